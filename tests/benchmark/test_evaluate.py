"""Scoring on configured data: a bare unified model reads through one cascade."""

from __future__ import annotations

import torch

from unihema.benchmark.evaluate import evaluate_entries, predictor_of
from unihema.config import load_config
from unihema.config.schema import DatasetEntry
from unihema.modeling.model import UniHema
from unihema.modeling.reading import ReadingCascade


def test_a_reading_model_is_scored_through_its_cascade(tiny, synth_root):
    reading = UniHema.from_config(load_config(None, tiny + ["model.reading.tasks=[vqa]"]))
    plain = UniHema.from_config(load_config(None, tiny + ["model.tasks=[classify]"]))
    wrapped = predictor_of(reading)
    assert isinstance(wrapped, ReadingCascade) and wrapped.source == "model"
    assert predictor_of(plain) is plain
    torch.manual_seed(0)
    cfg = load_config(None, tiny)
    entry = DatasetEntry(name="synthetic_smear", root=str(synth_root), split="test")
    res = evaluate_entries(plain.eval(), cfg, [entry], limit=3, progress=False)
    assert list(res) == ["classify"] and 0.0 <= res["classify"]["synthetic_smear"][
        "accuracy"] <= 1.0
