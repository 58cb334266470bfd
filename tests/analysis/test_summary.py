"""Per-smear statistics: Wilson intervals, grading thresholds, the differential, platelets,
parasitaemia and the flags of an image that is not a smear."""

from __future__ import annotations

import json

import pytest

from unihema.analysis.records import CellRecord
from unihema.analysis.scale import ScaleEstimate, estimate_um_per_px
from unihema.analysis.summary import GRADING, Z95, grade, lineage_of, summarize, wilson


def test_wilson_against_known_values():
    # closed forms at the ends: upper z^2 / (n + z^2) for 0 of n, lower n / (n + z^2) for n of n
    assert wilson(0, 10) == pytest.approx((0.0, 0.27753), abs=1e-5)
    assert wilson(10, 10) == pytest.approx((0.72247, 1.0), abs=1e-5)
    assert wilson(5, 10) == pytest.approx((0.23659, 0.76341), abs=1e-5)
    # in general the bounds are the p at which the score test sits exactly at z
    for k, n in [(1, 100), (37, 250), (999, 1000)]:
        for p in wilson(k, n):
            assert abs(k / n - p) == pytest.approx(Z95 * (p * (1 - p) / n) ** 0.5, abs=1e-12)
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(11, 10)


@pytest.mark.parametrize("cell_type,percent,expected", [
    ("target cell", 4.99, ""), ("target cell", 5.0, "1+"), ("target cell", 20.0, "1+"),
    ("target cell", 20.01, "2+"), ("target cell", 50.0, "2+"), ("target cell", 50.1, "3+"),
    ("macrocyte", 10.9, ""), ("macrocyte", 11.0, "1+"), ("macrocyte", 21.0, "2+"),
    ("macrocyte", 51.0, "3+"),
    ("schistocyte", 0.0, ""), ("schistocyte", 0.5, "1+"), ("schistocyte", 1.0, "2+"),
    ("schistocyte", 2.0, "2+"), ("schistocyte", 2.1, "3+"), ("sickle cell", 3.0, "3+")])
def test_grading_thresholds(cell_type, percent, expected):
    assert grade(percent, GRADING[cell_type]) == expected


def test_lineages():
    assert lineage_of("band neutrophil") == "white blood cell"
    assert lineage_of("target cell") == "red blood cell"
    assert lineage_of("ring form") == "malaria parasite"
    assert lineage_of("giant platelet") == "platelet"
    assert lineage_of("no such cell") == "other"


def _cells(spec, field="f1"):
    """Records from ``[(type, count)]``, boxes laid out on a grid in ``field``."""
    out = []
    for t, n in spec:
        for _ in range(n):
            i = len(out)
            x, y = 40 * (i % 50), 40 * (i // 50)
            out.append(CellRecord(i, field, (x, y, x + 30, y + 30), lineage_of(t), t))
    return out


def _smear():
    cells = _cells([("red blood cell", 177), ("target cell", 20), ("schistocyte", 3),
                    ("segmented neutrophil", 6), ("lymphocyte", 3), ("monocyte", 1),
                    ("smudge cell", 1), ("platelet", 9), ("platelet clump", 1),
                    ("erythroblast", 2)])
    cells += _cells([("platelet", 6)], field="f2")
    return cells


def test_a_smear_summary():
    s = summarize(_smear())
    assert s.is_smear and s.n_fields == 2 and s.n_cells == len(_smear())
    assert s.lineages["red blood cell"] == 200 and s.lineages["white blood cell"] == 11
    assert s.counts["target cell"] == 20 and s.counts["smudge cell"] == 1
    assert s.per_field["f2"] == {"platelet": 6}
    # differential: 10 white cells, the smudge cell left out
    assert s.differential_n == 10
    neut = s.differential["segmented neutrophil"]
    assert (neut.count, neut.total, neut.percent) == (6, 10, 60.0)
    lo, hi = wilson(6, 10)
    assert (neut.low, neut.high) == pytest.approx((100 * lo, 100 * hi))
    assert "smudge cell" not in s.differential
    assert sum(p.percent for p in s.differential.values()) == pytest.approx(100)
    # red-cell morphology of 200 red cells
    assert set(s.red_morphology) == {"target cell", "schistocyte"}
    assert s.red_morphology["target cell"].percent == 10.0
    assert s.red_morphology["target cell"].grade == "1+"
    assert s.red_morphology["schistocyte"].grade == "2+"  # 1.5 %
    # platelets: 15 over 2 fields, the clump apart
    assert s.platelets["count"] == 15 and s.platelets["clumps"] == 1
    assert s.platelets["per_field"] == 7.5
    assert s.platelets["per_100_red_cells"] == 7.5
    assert s.nrbc_per_100_wbc == 20.0
    assert s.parasitaemia is None
    assert set(s.flags) == {"few_white_cells", "few_red_cells", "platelet_clumps"}
    assert summarize(_smear(), n_fields=5).platelets["per_field"] == 3.0


def test_parasitaemia_counts_infected_red_cells_once():
    cells = _cells([("red blood cell", 98), ("infected red blood cell", 2)])
    x0, y0, x1, y1 = cells[0].box  # a ring form inside the first red cell
    cells.append(CellRecord(100, "f1", (x0 + 5, y0 + 5, x0 + 12, y0 + 12), "malaria parasite",
                            "ring form"))
    cells.append(CellRecord(101, "f1", (x0 + 15, y0 + 15, x0 + 20, y0 + 20),
                            "malaria parasite", "ring form"))  # a second one, same cell
    cells[1].attributes["infected"] = "yes"
    s = summarize(cells)
    p = s.parasitaemia
    assert (p.count, p.total, p.percent) == (4, 100, 4.0)
    assert (p.low, p.high) == pytest.approx(tuple(100 * v for v in wilson(4, 100)))
    cells[0].field = "elsewhere"  # a parasite of another field does not infect it
    assert summarize(cells).parasitaemia.count == 3


def test_no_cells_is_not_a_smear(tmp_path):
    s = summarize([], n_fields=1)
    assert not s.is_smear and s.flags == ["no_cells"] and "no cells" in s.messages[0]
    assert s.differential is None and s.platelets is None and s.n_cells == 0
    back = json.loads(s.write(tmp_path / "summary.json").read_text())
    assert back["is_smear"] is False and back["counts"] == {} and back["n_fields"] == 1


def test_an_implausible_scale_is_not_a_smear():
    scale = estimate_um_per_px([2000.0] * 40)
    s = summarize(_smear(), scale=scale)
    assert not s.is_smear and "scale_implausible" in s.flags
    assert s.counts["target cell"] == 20  # what was found is kept ...
    assert s.differential is None and s.red_morphology is None  # ... nothing is derived
    assert s.scale["plausible"] is False
    ok = summarize(_smear(), scale=ScaleEstimate.given(0.1))
    assert ok.is_smear and ok.scale["source"] == "given"


def test_graded_and_excluded_types_are_canonical_red_and_white_types():
    from unihema.analysis.summary import NOT_ABNORMAL, NOT_IN_DIFFERENTIAL

    assert all(lineage_of(t) == "red blood cell" for t in list(GRADING) + list(NOT_ABNORMAL))
    assert all(lineage_of(t) == "white blood cell" for t in NOT_IN_DIFFERENTIAL)


def test_summary_table_csv(tmp_path):
    import csv

    s = summarize(_smear())
    rows = list(csv.reader(s.write_csv(tmp_path / "summary.csv").open()))
    assert rows[0] == ["section", "name", "count", "total", "percent", "low", "high", "grade"]
    by = {(r[0], r[1]): r for r in rows[1:]}
    assert by[("differential", "segmented neutrophil")][2:5] == ["6", "10", "60.0"]
    assert by[("red morphology", "schistocyte")][7] == "2+"
    assert by[("platelets", "per_field")][2] == "7.5"
    assert ("flag", "platelet_clumps") in by
