"""Cell embeddings of a cohort with a model: one unit-norm embedding and type probabilities per
cell, cached by model fingerprint and cohort, embedded again when either changes."""

from __future__ import annotations

import pytest
import torch

from tests.patient.conftest import WHITE_TYPES
from unihema.data.patients import load_cohort
from unihema.patient import features as F


def test_extract_embeds_every_cell_and_reads_the_cache_back(pipe, cohort_dir, tmp_path,
                                                             monkeypatch):
    bags = load_cohort(cohort_dir)
    feats = F.extract(pipe.model, pipe.processor, bags, cohort_dir, cache_dir=tmp_path,
                      progress=False, batch_size=16)
    assert feats.patient_ids == [b.patient_id for b in bags]
    assert feats.types == WHITE_TYPES
    d = pipe.model.config.heads.embed_dim
    for b, e, p in zip(bags, feats.embeddings, feats.probs):
        assert e.shape == (len(b.cells), d) and p.shape == (len(b.cells), 3)
        assert torch.allclose(e.norm(dim=-1), torch.ones(len(e)), atol=1e-4)
        assert torch.allclose(p.sum(-1), torch.ones(len(p)), atol=1e-4)
    files = list(tmp_path.glob("cells-*.safetensors"))
    assert len(files) == 1 and feats.fingerprint[:12] in files[0].name

    def no_model(*a, **k):
        raise AssertionError("the cache should have been read")

    monkeypatch.setattr(F, "embed_cells", no_model)
    again = F.extract(pipe.model, pipe.processor, bags, cohort_dir, cache_dir=tmp_path,
                      progress=False)
    assert all(torch.equal(a, b) for a, b in zip(feats.embeddings, again.embeddings))
    monkeypatch.undo()
    # one patient fewer: another cohort key, another file
    F.extract(pipe.model, pipe.processor, bags[1:], cohort_dir, cache_dir=tmp_path,
              progress=False)
    assert len(list(tmp_path.glob("cells-*.safetensors"))) == 2


def test_embeddings_of_the_same_picture_agree_whatever_the_batch(pipe, cohort_dir):
    bags = load_cohort(cohort_dir)
    cells = bags[0].cells[:3]
    one, _ = F.embed_cells(pipe.model, pipe.processor, cells[:1], WHITE_TYPES)
    three, _ = F.embed_cells(pipe.model, pipe.processor, cells, WHITE_TYPES, batch_size=2)
    assert torch.allclose(one[0], three[0], atol=1e-5)


def test_fingerprint_follows_the_weights(pipe):
    fp = F.model_fingerprint(pipe.model)
    assert fp == F.model_fingerprint(pipe.model) and len(fp) == 64
    p = next(pipe.model.parameters())
    with torch.no_grad():
        p.add_(1.0)
        try:
            assert F.model_fingerprint(pipe.model) != fp
        finally:
            p.sub_(1.0)


def test_text_embeddings_live_in_the_cell_space(pipe):
    t = F.text_embeddings(pipe.model, ["PML::RARA", "NPM1; FLT3-ITD"])
    assert t.shape == (2, pipe.model.config.heads.embed_dim)
    assert torch.allclose(t.norm(dim=-1), torch.ones(2), atol=1e-4)


def test_problems_are_named(pipe, cohort_dir, tmp_path):
    bags = load_cohort(cohort_dir)
    bags[0].cells = []
    with pytest.raises(ValueError, match="P00"):
        F.extract(pipe.model, pipe.processor, bags, cohort_dir, progress=False)
    bags = load_cohort(cohort_dir)
    bags[1].cells[0] = str(tmp_path / "gone.png")
    with pytest.raises(FileNotFoundError, match="gone.png"):
        F.extract(pipe.model, pipe.processor, bags, cohort_dir, progress=False)
