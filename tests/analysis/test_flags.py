"""Smear-level review flags: the rules, their validation, and the summary that carries them."""

from __future__ import annotations

import json

import pytest

from unihema.analysis.flags import (DEFAULT_POLICY, FlagPolicy, FlagRule, load_policy,
                                    review, review_flags)
from unihema.analysis.records import CellRecord
from unihema.analysis.summary import lineage_of, summarize


def _cells(types, field="f", **extra):
    return [CellRecord(i + 1, field, (10.0 * i, 0.0, 10.0 * i + 8, 8.0), lineage_of(t), t,
                       {t: 0.9}, **extra) for i, t in enumerate(types)]


def _normal(n_red=200, n_white=20):
    return ["red blood cell"] * n_red + ["segmented neutrophil"] * n_white


def test_a_normal_smear_is_not_flagged_and_says_what_was_checked():
    out = review(_cells(_normal()))
    assert out == {"needs_review": False, "flags": [],
                   "checked": [r.kind for r in DEFAULT_POLICY.rules]}


@pytest.mark.parametrize("cell_type,kind", [
    ("myeloblast", "blasts"), ("lymphoblast", "blasts"), ("promyelocyte", "promyelocytes"),
    ("atypical lymphocyte", "atypical_lymphocytes"), ("ring form", "parasites"),
    ("infected red blood cell", "parasites")])
def test_one_must_not_miss_cell_flags_the_smear(cell_type, kind):
    flags = review_flags(_cells(_normal() + [cell_type]))
    assert [f.kind for f in flags] == [kind]
    f = flags[0]
    assert f.count == 1 and f.threshold == {"min_count": 1, "min_share": None}
    assert f.reason.startswith(kind.replace("_", " ") + ": 1 cell (")
    assert f.reason.endswith("; flagged from 1 cell")
    denominator = 201 if kind == "parasites" and cell_type != "ring form" else (
        200 if kind == "parasites" else 21)
    assert f.share == pytest.approx(100.0 / denominator, abs=1e-3)


def test_schistocytes_flag_above_their_share_of_red_cells_only():
    # 1 of 200 red cells (0.5 %): below the 1 % of the default rule
    assert review_flags(_cells(_normal(199) + ["schistocyte"])) == []
    flags = review_flags(_cells(_normal(196) + ["schistocyte"] * 4))
    assert [(f.kind, f.count, f.share) for f in flags] == [("schistocytes", 4, 2.0)]
    assert "2.0 % of red blood cells" in flags[0].reason and "1 % of red blood cells" in \
        flags[0].reason


def test_unknown_cells_need_a_count_and_a_share_of_the_assessed_cells():
    def cells(n_unknown, n_known):
        return (_cells(["lymphocyte"] * n_unknown, unknown=True, unknown_score=5.0)
                + _cells(["lymphocyte"] * n_known, unknown=False, unknown_score=0.1))
    assert review_flags(cells(2, 3)) == []          # 40 % but only 2 cells
    assert review_flags(cells(3, 97)) == []         # 3 cells but 3 %
    flags = review_flags(cells(4, 16))
    assert [(f.kind, f.count, f.share) for f in flags] == [("unknown_cells", 4, 20.0)]
    # cells without a trust verdict are not counted, nor assessed
    assert review_flags(_cells(["lymphocyte"] * 10)) == []


def test_min_probability_counts_only_confident_cells():
    rule = FlagRule("blasts", ("blast",), min_probability=0.95)
    policy = FlagPolicy((rule,))
    assert review_flags(_cells(["myeloblast"]), policy) == []   # p = 0.9
    assert len(review_flags(_cells(["myeloblast"]), FlagPolicy((FlagRule(
        "blasts", ("blast",), min_probability=0.9),)))) == 1


def test_policy_files_are_validated_with_clear_errors(tmp_path):
    good = tmp_path / "flags.yaml"
    good.write_text("rules:\n  - {kind: blasts, types: [blast], min_count: 2}\n"
                    "  - {kind: schistocytes, types: [schistocyte], min_share: 0.5}\n")
    policy = load_policy(good)
    assert [r.kind for r in policy.rules] == ["blasts", "schistocytes"]
    assert policy.rules[1].of == "red blood cell"
    assert review_flags(_cells(_normal() + ["myeloblast"]), policy) == []
    assert FlagPolicy.from_dict(json.loads(json.dumps(policy.to_dict()))) == policy
    cases = {
        "rules:\n  - {kind: x, types: [blastt]}\n": "'blastt' is not a canonical cell type "
                                                     "(did you mean 'blast'?)",
        "rules:\n  - {kind: x, types: [blast], min_cout: 2}\n": "unknown key 'min_cout' "
                                                               "(did you mean 'min_count'?)",
        "rules:\n  - {kind: x, types: [blast], min_count: 0}\n": "'min_count' must be an integer",
        "rules:\n  - {kind: x, types: [blast], min_share: 120}\n": "'min_share' must be a "
                                                                  "percentage",
        "rules:\n  - {kind: x}\n": "give either 'types'",
        "rules:\n  - {kind: x, types: [blast]}\n  - {kind: x, types: [schistocyte]}\n":
            "kinds must be distinct",
        "rule: []\n": "expected a mapping with one key 'rules'",
    }
    for text, message in cases.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(ValueError) as err:
            load_policy(bad)
        assert str(bad) in str(err.value) and message in str(err.value), str(err.value)


def test_the_summary_carries_the_review_and_its_rows():
    cells = _cells(_normal(150, 30) + ["myeloblast", "ring form"])
    s = summarize(cells)
    assert s.review["needs_review"] is True
    assert [f["kind"] for f in s.review["flags"]] == ["blasts", "parasites"]
    d = json.loads(json.dumps(s.to_dict()))
    assert d["review"]["flags"][0] == {"kind": "blasts", "count": 1,
                                       "share": pytest.approx(100 / 31, abs=1e-3),
                                       "threshold": {"min_count": 1, "min_share": None},
                                       "reason": s.review["flags"][0]["reason"]}
    assert ["review flag", "blasts", 1, "", round(100 / 31, 3), "", "", ""] in s.rows()
    # a lab's own rules
    strict = FlagPolicy((FlagRule("blasts", ("blast",), min_count=2),))
    assert summarize(cells, policy=strict).review == {"needs_review": False, "flags": [],
                                                      "checked": ["blasts"]}
