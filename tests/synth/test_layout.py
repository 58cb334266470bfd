"""Smear layouts: exact composition quotas, determinism, seam placement, spec checks."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from unihema.data import vocab
from unihema.synth import DETECT_CLASSES
from unihema.synth.layout import (HOSTS, LINEAGES, SmearSpec, lineage_of, plan_smear, quotas,
                                  seam_lines)


def test_quotas_are_exact_largest_remainder_shares():
    got = Counter(quotas({"a": 1.0, "b": 3.0, "c": 0.0}, 10))
    assert got == {"a": 3, "b": 7}  # 2.5 -> 3 and 7.5 -> 7 by remainder order, total kept
    assert sum(Counter(quotas({"x": 1, "y": 1, "z": 1}, 100)).values()) == 100
    assert quotas({"a": 1.0}, 0) == [] and quotas({}, 5) == []


def test_layout_is_deterministic_and_in_drawing_order():
    a = plan_smear(120, 90, seed=5)
    b = plan_smear(120, 90, seed=5)
    c = plan_smear(120, 90, seed=6)
    assert [(x.id, x.type, x.y, x.x, x.seed) for x in a.cells] == \
           [(x.id, x.type, x.y, x.x, x.seed) for x in b.cells]
    assert [x.y for x in a.cells] != [x.y for x in c.cells]
    assert [x.id for x in a.cells] == list(range(1, len(a.cells) + 1))
    order = [LINEAGES.index(x.lineage) for x in a.cells]
    assert order == sorted(order)
    assert all(3.0 <= x.y <= 87.0 and 3.0 <= x.x <= 117.0 for x in a.cells if not x.host)


def test_composition_follows_the_spec():
    spec = SmearSpec(red_coverage=0.4, red_mix={"schistocyte": 0.1, "target cell": 0.2},
                     white_per_100_red=5, white_mix={"lymphocyte": 1, "monocyte": 1},
                     platelets_per_100_red=10, parasitaemia=0.1)
    lay = plan_smear(200, 150, seed=2, spec=spec)
    red = [c for c in lay.cells if c.lineage == "red blood cell"]
    kinds = Counter(c.type for c in red)
    n = len(red)
    planned = int(round(0.4 * 200 * 150 / (np.pi * 3.75 ** 2)))
    assert n >= 0.97 * planned  # nearly every planned red cell finds room
    assert abs(kinds["schistocyte"] / n - 0.1) < 0.02 and abs(kinds["target cell"] / n - 0.2) < 0.02
    whites = Counter(c.type for c in lay.cells if c.lineage == "white blood cell")
    assert set(whites) == {"lymphocyte", "monocyte"} and abs(whites["lymphocyte"]
                                                            - whites["monocyte"]) <= 1
    assert all(len(c.attributes) == 11 for c in lay.cells if c.lineage == "white blood cell")
    parasites = [c for c in lay.cells if c.lineage == "malaria parasite"]
    assert len(parasites) == int(round(0.1 * n))
    by_id = {c.id: c for c in lay.cells}
    for p in parasites:
        host = by_id[p.host]
        assert host.lineage == "red blood cell" and host.type in HOSTS
        assert np.hypot(p.y - host.y, p.x - host.x) < 1.2  # well inside its host
    assert len({p.host for p in parasites}) == len(parasites)
    plt = sum(c.lineage == "platelet" for c in lay.cells)
    assert abs(plt - 0.1 * planned) <= 0.1 * planned * 0.2 + 1


def test_seam_cells_are_centred_on_seam_lines():
    lay = plan_smear(150, 100, seed=1, seam_um=30.0, seam_cells=25)
    seam = [c for c in lay.cells if c.seam]
    assert len(seam) >= 20
    for c in seam:
        on_x = abs(c.x / 30.0 - round(c.x / 30.0)) < 1e-9 and 0 < c.x < 150
        on_y = abs(c.y / 30.0 - round(c.y / 30.0)) < 1e-9 and 0 < c.y < 100
        assert on_x or on_y
    assert {c.lineage for c in seam} >= {"red blood cell", "white blood cell"}
    assert not any(c.seam for c in plan_smear(150, 100, seed=1).cells)


def test_spec_check_names_the_bad_fields():
    with pytest.raises(ValueError, match="red_mix.*sickle"):
        SmearSpec(red_mix={"sickle": 0.1}).check()
    with pytest.raises(ValueError, match="parasitaemia=0.9"):
        plan_smear(50, 50, spec=SmearSpec(parasitaemia=0.9))
    with pytest.raises(ValueError, match="white_mix"):
        SmearSpec(white_mix={"neutrophil": 1}).check()
    with pytest.raises(ValueError, match="too small"):
        plan_smear(5, 50)


def test_lineage_names_and_seam_lines():
    assert lineage_of("target cell") == "red blood cell"
    assert lineage_of("basophil") == "white blood cell"
    assert lineage_of("ring form") == "malaria parasite" and lineage_of("platelet") == "platelet"
    for t in DETECT_CLASSES:  # the broadest vocabulary term, as the analysis summary uses
        assert lineage_of(t) == (vocab.ancestors(t) or [t])[-1] and lineage_of(t) in LINEAGES
    with pytest.raises(ValueError, match="unknown cell type"):
        lineage_of("nucleus")
    assert seam_lines(1100, 512) == [512, 1024] and seam_lines(512, 512) == []
    assert seam_lines(100, None) == []
