"""Calibration, open-set and referral metrics against their definitions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from unihema.trust.metrics import (aupr, auroc, calibration_metrics, choose_referral_threshold,
                                   fpr_at_tpr, open_set_metrics, referral_metrics, roc_curve)


def test_calibration_matches_the_classify_evaluator_definition():
    g = torch.Generator().manual_seed(0)
    probs = (3 * torch.randn(500, 4, generator=g)).softmax(-1)
    labels = torch.randint(0, 4, (500,), generator=g)
    m = calibration_metrics(probs, labels)
    ref = multiclass_calibration_error(probs, labels, num_classes=4, n_bins=15, norm="l1")
    assert m["ece"] == pytest.approx(float(ref), abs=1e-5)
    assert m["nll"] == pytest.approx(float(torch.nn.functional.nll_loss(probs.log(), labels)),
                                     rel=1e-5)
    onehot = torch.nn.functional.one_hot(labels, 4).float()
    assert m["brier"] == pytest.approx(float(((probs - onehot) ** 2).sum(1).mean()), rel=1e-5)
    assert m["reliability"]["count"].sum() == 500 and len(m["reliability"]["edges"]) == 16


def test_perfect_and_empty_calibration():
    probs = torch.eye(3)
    m = calibration_metrics(probs, torch.arange(3))
    assert m["ece"] == pytest.approx(0.0) and m["brier"] == pytest.approx(0.0)
    assert m["accuracy"] == 1.0
    assert calibration_metrics(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))["n"] == 0


def test_open_set_metrics_on_known_rankings():
    known, unknown = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.35, 0.5, 0.6])
    # 11 of 12 (unknown, known) pairs ordered right
    assert auroc(known, unknown) == pytest.approx(11 / 12)
    assert auroc(np.array([1.0, 1.0]), np.array([1.0])) == pytest.approx(0.5)  # ties
    assert auroc(np.zeros(3), np.ones(3)) == 1.0
    # the threshold keeping 95 % of known cells sits near 0.385: 0.35 slips under it
    assert fpr_at_tpr(known, unknown) == pytest.approx(1 / 3)
    # ranked: 0.6 u, 0.5 u, 0.4 k, 0.35 u, ... -> AP = (1 + 1 + 3/4) / 3
    assert aupr(known, unknown) == pytest.approx((1 + 1 + 0.75) / 3)
    roc = roc_curve(known, unknown)
    assert roc["fpr"][0] == 0 and roc["tpr"][-1] == 1 and roc["fpr"][-1] == 1
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(11 / 12)
    m = open_set_metrics(known, np.zeros(0))
    assert np.isnan(m["auroc"]) and m["n_unknown"] == 0


def test_referral_threshold_reaches_the_target_with_the_most_cells():
    conf = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    correct = np.array([1, 1, 1, 0, 1, 0])
    assert choose_referral_threshold(conf, correct, 1.0) == 0.9
    assert choose_referral_threshold(conf, correct, 0.8) == 0.7  # 4 of 5
    assert choose_referral_threshold(conf, 1 - correct * 0, 0.98) == 0.6
    t = choose_referral_threshold(conf, np.zeros(6), 0.98)  # nothing is good enough
    assert t > 0.99 and not (conf >= t).any()
    # tied confidences are kept or referred together
    assert choose_referral_threshold(np.array([0.9, 0.9]), np.array([1, 0]), 0.9) > 0.9


def test_referral_metrics_count_decided_unknown_cells():
    decided = np.array([True, True, False, True])
    correct = np.array([True, False, True, False])
    m = referral_metrics(decided, correct, unknown=np.array([False, False, False, True]))
    assert m["coverage"] == 0.75 and m["accuracy"] == pytest.approx(1 / 3)
    assert m["unknown_decided"] == 1.0 and m["decided"] == 3
