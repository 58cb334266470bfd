"""Unknown-cell scorers: each ranks cells of an unseen cluster above the trained ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from unihema.trust.unknown import (UNKNOWN_SCORERS, FitData, build_scorer,
                                   threshold_at_tpr)


def _data():
    g = torch.Generator().manual_seed(0)
    centres = F.normalize(torch.randn(4, 16, generator=g), dim=-1)
    known_c, novel_c = centres[:3], centres[3:]

    def cells(c, n):
        idx = torch.arange(len(c)).repeat(n)
        return F.normalize(c[idx] + 0.15 * torch.randn(len(idx), 16, generator=g), dim=-1), idx

    train, train_y = cells(known_c, 40)
    known, _ = cells(known_c, 20)
    novel, _ = cells(novel_c, 30)
    names = {"neutrophil": known_c[0], "lymphocyte": known_c[1], "monocyte": known_c[2],
             "abnormal cell": novel_c[0], "cell": F.normalize(centres.mean(0), dim=-1)}

    def embed_names(ns):
        return torch.stack([names[n] for n in ns])

    fit = FitData(train, train_y, ["neutrophil", "lymphocyte", "monocyte"], embed_names)
    return fit, known, novel, known_c


@pytest.mark.parametrize("method", ["msp", "energy", "mahalanobis", "knn", "names"])
def test_every_scorer_ranks_unseen_cells_higher(method):
    fit, known, novel, known_c = _data()
    params = {"other": ["abnormal cell", "cell"]} if method == "names" else {}
    scorer = build_scorer(method, params)
    tensors = scorer.fit(fit)
    scale = 10.0
    s_known = scorer.score(scale * known @ known_c.t(), known, tensors)
    s_novel = scorer.score(scale * novel @ known_c.t(), novel, tensors)
    assert s_known.shape == (len(known),) and s_novel.shape == (len(novel),)
    auroc = (s_novel[:, None] > s_known[None, :]).float().mean()
    assert auroc > 0.9, (method, float(auroc))
    assert scorer.params() == build_scorer(method, scorer.params()).params()


def test_registry_names_and_errors():
    assert {"msp", "energy", "mahalanobis", "knn", "names"} <= set(UNKNOWN_SCORERS.names())
    with pytest.raises(TypeError, match="scorer 'knn': bad options"):
        build_scorer("knn", {"kk": 3})
    with pytest.raises(ValueError, match="needs the cell embeddings"):
        build_scorer("knn").score(torch.zeros(2, 3), None, {"bank": torch.zeros(4, 8)})
    with pytest.raises(ValueError, match="needs the model's text side"):
        fit, *_ = _data()
        fit.embed_names = None
        build_scorer("names").fit(fit)


def test_threshold_keeps_the_share_of_known_cells():
    scores = torch.arange(100, dtype=torch.float32)
    t = threshold_at_tpr(scores, 0.95)
    assert float((scores <= t).float().mean()) == pytest.approx(0.95, abs=0.011)
