"""Which cells a protocol trains, calibrates and tests on: candidates with exclusions."""

from __future__ import annotations

import pytest

from unihema.config import load_config
from unihema.config.schema import DatasetEntry
from unihema.engine.data import build_task_splits
from unihema.benchmark.trust_cells import entry_label, known_classes


def _labels(synth_root, tiny, candidates):
    cfg = load_config(None, tiny + ["model.tasks=[classify]"])
    entry = DatasetEntry(name="synthetic_smear", root=str(synth_root), split="train",
                         tasks=["classify"], candidates={"classify": candidates})
    return [s.label for s in build_task_splits([entry], cfg, train=False)[0].samples]


def test_an_excluded_subtype_is_left_out_not_merged(synth_root, tiny):
    merged = _labels(synth_root, tiny, ["lymphocyte", "monocyte"])
    plain = _labels(synth_root, tiny, ["lymphocyte", "monocyte", "-atypical lymphocyte"])
    kept_apart = _labels(synth_root, tiny, ["atypical lymphocyte", "lymphocyte", "monocyte"])
    n_atypical = kept_apart.count("atypical lymphocyte")
    assert n_atypical > 0, "the fixture should hold atypical lymphocytes"
    assert len(plain) == len(merged) - n_atypical
    assert set(plain) <= {"lymphocyte", "monocyte"}
    assert merged.count("lymphocyte") == plain.count("lymphocyte") + n_atypical


def test_known_classes_and_labels():
    a = DatasetEntry(name="x", split="val", candidates={"classify": ["a cell", "-b cell"]})
    b = DatasetEntry(name="x", split="test", root="r1")
    c = DatasetEntry(name="x", split="test", root="other/r2")
    assert known_classes([a, b]) == ["a cell"]
    with pytest.raises(ValueError, match="no data entry lists candidates.classify"):
        known_classes([b])
    d = DatasetEntry(name="x", split="val", candidates={"classify": ["c cell"]})
    with pytest.raises(ValueError, match="different candidates"):
        known_classes([a, d])
    assert entry_label(b, [b, c]) == "x/test@r1" and entry_label(c, [b, c]) == "x/test@r2"
    assert entry_label(b) == "x/test"
    e = DatasetEntry(name="x", split="all", where={"subset": "Dataset 2"})
    assert entry_label(e) == "x/all[subset=Dataset 2]"
