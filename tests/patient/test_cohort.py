"""A cohort folder with a model: the protocol run writes its folds once and reuses them, an
encoder trained on the whole cohort carries what it was trained on, retrieval lists the
nearest reference patients."""

from __future__ import annotations

import json

import torch

from unihema.patient.cohort import (check_cell_model, cohort_features, nearest, reference,
                                    run_protocol, text_table, train_encoder)
from unihema.patient.encoder import EncoderConfig, PatientEncoder

FAST = EncoderConfig(hidden=16, attention=8, epochs=3, batch_size=4)


def test_run_protocol_writes_the_table_and_reuses_its_folds(pipe, cohort_dir, tmp_path):
    out = tmp_path / "eval"
    r1 = run_protocol(pipe.model, pipe.processor, cohort_dir, out, k=2, config=FAST,
                      cache_dir=tmp_path / "cache", progress=False)
    folds = json.loads((cohort_dir / "folds.json").read_text())["folds"]
    assert sorted(p for f in folds for p in f) == [f"P{i:02d}" for i in range(10)]
    assert (out / "patient_eval.md").is_file() and r1["patients"] == 10
    assert r1["embed_seconds"] >= 0 and r1["wall_seconds"] >= r1["embed_seconds"]
    r2 = run_protocol(pipe.model, pipe.processor, cohort_dir, out, k=2, config=FAST,
                      cache_dir=tmp_path / "cache", progress=False)
    assert r2["rows"] == r1["rows"]  # same folds, same cached cells, same seed


def test_train_encoder_and_retrieve(pipe, cohort_dir, tmp_path):
    bags, feats = cohort_features(pipe.model, pipe.processor, cohort_dir,
                                  cache_dir=tmp_path, progress=False)
    enc = train_encoder(pipe.model, bags, feats, FAST)
    assert enc.diagnoses == ["acute promyelocytic leukemia", "healthy"]
    assert enc.meta["types"] == feats.types and enc.meta["findings_vocab"] == ["PML::RARA"]
    assert check_cell_model(enc, pipe.model) is None
    enc.save(tmp_path / "enc")
    back = PatientEncoder.load(tmp_path / "enc")
    ref = reference(back, feats)
    hits = nearest(ref[3], ref, bags, k=4, exclude="P03")
    assert len(hits) == 4 and "P03" not in [h["patient_id"] for h in hits]
    sims = [h["similarity"] for h in hits]
    assert sims == sorted(sims, reverse=True)
    assert set(h["diagnosis"] for h in hits) <= set(back.diagnoses)
    table = text_table(pipe.model, bags)
    assert set(table) == {"PML::RARA", "no alteration found"}
    assert all(v.shape == (pipe.model.config.heads.embed_dim,) for v in table.values())
    assert torch.allclose(ref.norm(dim=-1), torch.ones(len(ref)), atol=1e-4)
