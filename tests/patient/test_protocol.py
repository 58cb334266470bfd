"""The protocol on planted cohorts: every feature set scored on the same patient-level folds,
the encoder above mean pooling where the diagnosis shows in a few percent of cells, the table
and the goals written."""

from __future__ import annotations

import json

import pytest
import torch

from unihema.data.patients import draw_folds
from unihema.patient.encoder import EncoderConfig
from unihema.patient.protocol import (ENCODER, FEATURES, evaluate, goals, markdown,
                                      write_results)

FAST = EncoderConfig(hidden=32, attention=16, epochs=40, batch_size=16)


@pytest.fixture(scope="module")
def result(planted_cohort):
    bags, feats = planted_cohort
    texts = sorted({b.findings_text() for b in bags} | {f for b in bags for f in b.findings})
    g = torch.Generator().manual_seed(1)
    table = {t: torch.nn.functional.normalize(torch.randn(16, generator=g), dim=0)
             for t in texts}
    return evaluate(feats, bags, draw_folds(bags, 3, 0), text_table=table, config=FAST)


def test_every_feature_set_is_scored_on_every_fold(result):
    names = [r["features"] for r in result["rows"]]
    assert names[0] == ENCODER and set(FEATURES.names()) <= set(names)
    assert all(len(v) == 3 for v in result["folds"].values())
    enc = result["rows"][0]
    for key in ("knn", "lr", "head", "p_at_5", "findings_r_at_3", "text_p_at_5"):
        assert 0.0 <= enc[key] <= 1.0 and key + "_sd" in enc
    mean = next(r for r in result["rows"] if r["features"] == "mean pooling")
    assert "head" not in mean and "findings_r_at_3" not in mean
    assert result["patients"] == 60 and result["cells"] > 60 * 30
    for name, matrix in result["knn_confusion"].items():  # every patient predicted once
        assert sum(map(sum, matrix)) == 60
        assert set(result["knn_recall"][name]) == set(result["diagnoses"])


def test_the_encoder_finds_what_mean_pooling_dilutes(result):
    rows = {r["features"]: r for r in result["rows"]}
    # the truth differential cannot see the planted cells (they count as a common type)
    assert rows[ENCODER]["knn"] > rows["differential (truth)"]["knn"] + 0.2
    assert rows[ENCODER]["head"] >= 0.85
    assert rows[ENCODER]["findings_r_at_3"] >= 0.9
    # the evidence: the top-attention cells are the planted ones far above their share
    assert rows[ENCODER]["evidence_at_8"] > 3 * rows[ENCODER]["abnormal_share"]


def test_table_json_and_goals(result, tmp_path):
    md = markdown(result)
    table = md.split("\n\n")[0].splitlines()
    assert len(table) == len(result["rows"]) + 2 and table[0].startswith("| features |")
    assert "60 patients" in md and "recall per diagnosis" in md
    lines = goals(result)
    assert any("precision@5" in x for x in lines)
    assert all(x.startswith(("met", "MISSED")) for x in lines)
    paths = write_results(result, tmp_path)
    doc = json.loads(paths["json"].read_text())
    assert doc["rows"] == result["rows"] and doc["goals"] == lines


def test_folds_of_another_cohort_are_refused(planted_cohort):
    bags, feats = planted_cohort
    with pytest.raises(ValueError, match="another cohort"):
        evaluate(feats, bags, [[b.patient_id for b in bags[:30]], ["X"]],
                 features=["mean pooling"])
