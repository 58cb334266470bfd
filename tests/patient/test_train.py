"""Training on frozen cell embeddings: the contrastive loss rewards aligned pairs, and an
encoder trained on planted cohorts finds the diagnosis that shows in a few percent of cells."""

from __future__ import annotations

import pytest
import torch

from unihema.patient.encoder import EncoderConfig
from unihema.patient.probes import balanced_accuracy
from unihema.patient.train import fit_encoder, info_nce

FAST = EncoderConfig(hidden=32, attention=16, epochs=60, batch_size=16)


def test_info_nce_is_low_for_aligned_pairs_and_counts_every_reader_of_a_text():
    e = torch.eye(4)
    aligned = info_nce(e, e, torch.arange(4), tau=0.1)
    shuffled = info_nce(e, e, torch.tensor([1, 2, 3, 0]), tau=0.1)
    assert float(aligned) < 0.01 < float(shuffled)
    # two patients read text 0: both are positives for it, no penalty between them
    p = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0]]), dim=-1)
    t = torch.eye(2)
    assert float(info_nce(p, t, torch.tensor([0, 0, 1]), tau=0.05)) < 0.01


def test_the_encoder_learns_a_minority_signal(planted_cohort):
    bags, feats = planted_cohort
    diagnoses = sorted({b.labels[0] for b in bags})
    y = [diagnoses.index(b.labels[0]) for b in bags]
    texts = sorted({b.findings_text() for b in bags})
    t_emb = torch.nn.functional.normalize(torch.randn(len(texts), 16), dim=-1)
    enc = fit_encoder(feats.embeddings[:45], y[:45], diagnoses, FAST,
                      text_embeddings=t_emb,
                      text_ids=[texts.index(b.findings_text()) for b in bags[:45]])
    out = enc.encode(feats.embeddings[45:])
    assert balanced_accuracy(y[45:], out.logits.argmax(1).tolist()) >= 0.9
    # the cells of the leukaemia's own kind draw the attention: the top cell of a leukaemia
    # patient is one of them
    sick = [i for i, b in enumerate(bags[45:]) if b.meta["signal"]]
    w = out.cell_weights()
    hits = [int(w[i].argmax()) in bags[45 + i].meta["signal"] for i in sick]
    assert sum(hits) >= 0.8 * len(sick)
    assert enc.meta["train_patients"] == 45 and enc.meta["train_seconds"] >= 0


def test_bad_inputs_are_named(planted_cohort):
    bags, feats = planted_cohort
    with pytest.raises(ValueError, match="outside"):
        fit_encoder(feats.embeddings[:2], [0, 7], ["a", "b"], FAST)
    with pytest.raises(ValueError, match="embed_dim"):
        fit_encoder(feats.embeddings[:2], [0, 1], ["a", "b"], FAST,
                    text_embeddings=torch.zeros(1, 5), text_ids=[0, 0])
