"""Synthetic cohorts: files, exact truth consistent with the diagnosis, determinism."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from unihema.data.patients import load_cohort
from unihema.synth.cells import WHITE_TYPES
from unihema.synth.cohort import (FINDINGS, SUBTYPE, diagnoses_for, draw_patient,
                                  generate_cohort, parse_range, patient_rng, render_cell)
from unihema.synth.field import sample_optics


def _digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.png"))}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    summary = generate_cohort(root, patients=6, cells_per_patient=(8, 12), seed=3)
    return root, summary


def test_cohort_files_and_truth(cohort):
    root, summary = cohort
    bags = load_cohort(root, check_files=True)
    assert len(bags) == summary["patients"] == 6
    assert sum(len(b.cells) for b in bags) == summary["cells"]
    assert [b.patient_id for b in bags] == [f"SYN{i:04d}" for i in range(1, 7)]
    assert Counter(b.diagnosis for b in bags).most_common(1)[0][1] == 2  # balanced: 5 + 1
    for b in bags:
        sub = SUBTYPE[b.diagnosis]
        assert 8 <= len(b.cells) <= 12 and len(b.cell_types) == len(b.cells)
        assert set(b.cell_types) <= set(WHITE_TYPES) and set(b.findings) <= set(FINDINGS)
        for t, v in zip(b.cell_types, b.meta["cell_variants"]):
            assert v is None or v in dict(sub.variants.get(t, ()))  # variant of its subtype
        with Image.open(b.cells[0]) as im:
            assert im.size == (64, 64) and im.mode == "RGB"
    assert json.loads((root / "cohort.json").read_text())["seconds"] >= 0


def test_same_seed_same_cohort_other_seed_other(cohort, tmp_path):
    root, _ = cohort
    generate_cohort(tmp_path / "a", patients=6, cells_per_patient=(8, 12), seed=3, workers=2)
    assert _digest(tmp_path / "a") == _digest(root)  # workers do not change the output
    a, b = (tmp_path / "a" / "cohort.jsonl").read_text(), (root / "cohort.jsonl").read_text()
    assert a == b
    generate_cohort(tmp_path / "b", patients=2, cells_per_patient=(8, 12), seed=4)
    assert _digest(tmp_path / "b") != {k: v for k, v in _digest(root).items()
                                       if k.startswith(("cells/SYN0001/", "cells/SYN0002/"))}


def test_first_patients_do_not_depend_on_the_cohort_size():
    assert diagnoses_for(7, 0, list(SUBTYPE))[:5] == diagnoses_for(300, 0, list(SUBTYPE))[:5]
    assert sorted(diagnoses_for(5, 0, list(SUBTYPE))) == sorted(SUBTYPE)
    counts = Counter(diagnoses_for(13, 1, list(SUBTYPE))).values()
    assert max(counts) - min(counts) <= 1


def test_patients_follow_their_diagnosis():
    """Over many drawn patients (no pixels), each diagnosis shows its differential, its
    abnormal cells and its findings; NPM1 and RUNX1::RUNX1T1 share one differential."""
    by = {}
    for i in range(250):
        d = list(SUBTYPE)[i % 5]
        p = draw_patient(patient_rng(0, i), i, d, 150)
        assert len(p.cells) == 150
        by.setdefault(d, []).append(p)
    share = {d: np.mean([[sum(t == w for t, _ in p.cells) / 150 for w in WHITE_TYPES]
                         for p in ps], 0) for d, ps in by.items()}
    idx = WHITE_TYPES.index
    assert share["pml::rara"][idx("promyelocyte")] > 0.3 > share["npm1"][idx("promyelocyte")]
    assert share["healthy"][idx("myeloblast")] < 0.01 < 0.3 < share["npm1"][idx("myeloblast")]
    assert abs(share["npm1"] - share["runx1::runx1t1"]).max() < 0.06  # same mean differential
    variants = {d: Counter(v for p in ps for _, v in p.cells if v) for d, ps in by.items()}
    assert variants["healthy"] == Counter()
    assert set(variants["npm1"]) == {"cup nucleus"}
    assert set(variants["runx1::runx1t1"]) == {"auer rod", "pseudo-pelger"}
    assert set(variants["pml::rara"]) == {"hypergranular", "auer bundle"}
    cbfb = sum(variants["cbfb::myh11"].values()) / (50 * 150)
    assert 0.01 < cbfb < 0.1  # a signal in a few percent of the cells
    defining = {"pml::rara": "PML::RARA", "npm1": "NPM1", "cbfb::myh11": "CBFB::MYH11",
                "runx1::runx1t1": "RUNX1::RUNX1T1"}
    missed = sum(f not in p.findings for d, f in defining.items() for p in by[d])
    assert 0 < missed < 25  # the defining alteration is found in most patients, not all
    for f in defining.values():
        assert all(f not in p.findings for p in by["healthy"])


def test_render_cell_and_bad_arguments(tmp_path):
    rng = np.random.default_rng(0)
    img, attrs = render_cell(rng, "myeloblast", "cup nucleus", sample_optics(rng, 0.0), 48)
    assert img.shape == (48, 48, 3) and img.dtype == np.uint8 and len(attrs) == 11
    assert parse_range("100:500") == (100, 500) and parse_range("20") == (20, 20)
    with pytest.raises(ValueError, match="expected N or LO:HI, got 'x'"):
        parse_range("x")
    with pytest.raises(ValueError, match="need 1 <= LO <= HI, got 5:2"):
        parse_range("5:2")
    with pytest.raises(ValueError, match=r"unknown diagnoses \['cml'\]"):
        generate_cohort(tmp_path, patients=1, diagnoses=["cml"])
