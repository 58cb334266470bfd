"""Probes and retrieval scores on small hand-checked cases."""

from __future__ import annotations

import math

import torch

from unihema.patient.probes import (balanced_accuracy, knn_predict, logistic_regression,
                                    precision_at_k, recall_at_k, standardise)


def test_balanced_accuracy_is_the_mean_recall_per_class():
    # class 0: 3 of 4 right; class 1: 1 of 1 right -> (0.75 + 1) / 2
    assert balanced_accuracy([0, 0, 0, 0, 1], [0, 0, 0, 1, 1]) == 0.875


def test_knn_votes_and_breaks_ties_by_the_nearest():
    train = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.1]])
    y = [0, 0, 0, 1, 1]
    assert knn_predict(train, y, torch.tensor([[0.05], [4.9]]), k=3).tolist() == [0, 1]
    # two neighbours each: class 1's pair is nearer
    tied = torch.tensor([[0.0], [1.0], [3.0], [3.1]])
    assert knn_predict(tied, [0, 0, 1, 1], torch.tensor([[2.5]]), k=4).tolist() == [1]


def test_logistic_regression_separates_separable_classes():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(20, 3, generator=g) - 2, torch.randn(20, 3, generator=g) + 2])
    y = [0] * 20 + [1] * 20
    xs, _ = standardise(x, x)
    p = logistic_regression(xs, y, xs)
    assert p.shape == (40, 2) and torch.allclose(p.sum(1), torch.ones(40), atol=1e-5)
    assert balanced_accuracy(y, p.argmax(1).tolist()) == 1.0


def test_precision_and_recall_at_k():
    train = torch.tensor([[0.0], [0.1], [1.0], [1.1]])
    assert precision_at_k(train, [0, 0, 1, 1], torch.tensor([[0.05]]), [0], k=2) == 1.0
    assert precision_at_k(train, [0, 1, 1, 1], torch.tensor([[0.05]]), [0], k=2) == 0.5
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.1, 0.2, 0.3]])
    # query 0: relevant {0, 1}, top-2 {0, 2} -> 1/2; query 1: relevant {2} in top-2 -> 1
    assert recall_at_k(scores, [[0, 1], [2]], 2) == 0.75
    assert math.isnan(recall_at_k(scores, [[], []], 2))
