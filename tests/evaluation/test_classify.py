"""ClassifyEvaluator: hand-computed metrics, torchmetrics agreement, restrict_to, name indexing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import (
    multiclass_calibration_error,
    multiclass_f1_score,
)

from unihema.evaluation import EVALUATORS
from unihema.evaluation import tasks  # noqa: F401  (registers the evaluators)
from unihema.evaluation.classify import (
    ClassifyEvaluator,
    accuracy_at_coverage,
    reliability_bins,
    risk_coverage,
)

NAMES = ["neutrophil", "lymphocyte", "monocyte"]


def batch(classes, labels):
    return {"classes": classes, "labels": torch.tensor(labels)}


def run(items, **options):
    """``items``: (classes, true index, probs[, label]) tuples, one batch."""
    ev = ClassifyEvaluator(**options)
    ev.process(batch([c for c, *_ in items], [t for _, t, *_ in items]),
               [{"probs": torch.tensor(p), **({"label": r[0]} if r else {})}
                for _, _, p, *r in items])
    return ev, ev.evaluate()


# truth:      n  n  n  l  l  m
# prediction: n  n  l  l  m  m
ITEMS = [
    (NAMES, 0, [0.8, 0.1, 0.1]),
    (NAMES, 0, [0.6, 0.3, 0.1]),
    (NAMES, 0, [0.3, 0.6, 0.1]),
    (NAMES, 1, [0.1, 0.7, 0.2]),
    (NAMES, 1, [0.2, 0.3, 0.5]),
    (NAMES, 2, [0.0, 0.1, 0.9]),
]


def test_registered():
    assert EVALUATORS.get("classify") is ClassifyEvaluator


def test_hand_computed():
    ev, m = run(ITEMS)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # recalls: n 2/3, l 1/2, m 1
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    # precision n 1, l 1/2, m 1/2 -> F1 n 0.8, l 0.5, m 2/3
    f1 = {"neutrophil": 0.8, "lymphocyte": 0.5, "monocyte": 2 / 3}
    for name, v in f1.items():
        assert m[f"f1/{name}"] == pytest.approx(v)
    assert m["macro_f1"] == pytest.approx(sum(f1.values()) / 3)
    assert m["weighted_f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 2 / 3) / 6)
    p_true = [0.8, 0.6, 0.3, 0.7, 0.3, 0.9]
    assert m["nll"] == pytest.approx(-np.mean(np.log(p_true)))
    assert ev.class_names == NAMES
    np.testing.assert_array_equal(ev.confusion, [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    assert ev.per_class["lymphocyte"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2.0})


def test_ece_hand_computed_and_torchmetrics():
    _, m = run(ITEMS)
    # bins of width 1/15: confidences 0.8, 0.6, 0.6, 0.7, 0.5, 0.9 with correct 1,1,0,1,0,1;
    # 0.6 and 0.6 share a bin (acc 1/2), every other bin holds one item.
    gaps = [abs(1 - 0.8), abs(0.5 - 0.6) * 2, abs(1 - 0.7), abs(0 - 0.5), abs(1 - 0.9)]
    assert m["ece"] == pytest.approx(sum(gaps) / 6)
    probs = torch.tensor([p for _, _, p in ITEMS])
    target = torch.tensor([t for _, t, _ in ITEMS])
    ref = multiclass_calibration_error(probs, target, num_classes=3, n_bins=15)
    assert m["ece"] == pytest.approx(float(ref))


def test_agrees_with_torchmetrics_on_random_data():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(200, 5)) + 2 * np.eye(5)[rng.integers(0, 5, 200)]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    target = rng.integers(0, 5, 200)
    names = [f"c{k}" for k in range(5)]
    _, m = run([(names, int(t), p.tolist()) for t, p in zip(target, probs)])
    p_t, t_t = torch.tensor(probs), torch.tensor(target)
    pred = p_t.argmax(1)
    assert m["accuracy"] == pytest.approx(float((pred == t_t).double().mean()))
    assert m["macro_f1"] == pytest.approx(float(multiclass_f1_score(pred, t_t, 5, average="macro")))
    assert m["ece"] == pytest.approx(float(multiclass_calibration_error(p_t, t_t, 5)), abs=1e-6)


def test_label_overrides_argmax_for_decisions():
    _, m = run([(NAMES, 0, [0.2, 0.7, 0.1], 0), (NAMES, 1, [0.2, 0.7, 0.1], 0)])
    assert m["accuracy"] == pytest.approx(0.5)


def test_classes_indexed_by_name_across_candidate_lists():
    items = [(["a", "b"], 0, [0.9, 0.1]), (["b", "a"], 1, [0.2, 0.8]), (["c", "b"], 1, [0.4, 0.6])]
    ev, m = run(items)
    assert m["accuracy"] == 1.0 and m["balanced_accuracy"] == 1.0
    assert ev.class_names == ["a", "b"]  # "c" was a candidate but never true nor predicted


def test_predicted_only_class_does_not_enter_balanced_accuracy():
    items = [(NAMES, 0, [0.9, 0.05, 0.05]), (NAMES, 0, [0.1, 0.1, 0.8])]
    ev, m = run(items)
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    # F1 follows the usual convention: the predicted-only class scores 0 in the macro mean
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.0) / 2)
    assert ev.class_names == ["neutrophil", "monocyte"]


def test_restrict_to():
    items = ITEMS + [(NAMES + ["red blood cell"], 3, [0.0, 0.0, 0.0, 1.0])]
    items = [(c, t, list(p) + [0.0] * (len(c) - len(p))) for c, t, p in items]
    _, full = run(items)
    _, only = run(items, restrict_to=["neutrophil", "lymphocyte", "monocyte"])
    assert full["accuracy"] == pytest.approx(5 / 7)
    assert only["accuracy"] == pytest.approx(4 / 6)
    assert "f1/red blood cell" not in only
    with pytest.raises(TypeError):
        ClassifyEvaluator(restrict_to="neutrophil")


def test_one_class_and_empty():
    _, m = run([(["a"], 0, [1.0]), (["a"], 0, [1.0])])
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0 and m["ece"] == 0.0
    assert m["nll"] == 0.0
    assert ClassifyEvaluator().evaluate() == {}


def test_nll_is_finite_for_zero_probability():
    _, m = run([(["a", "b"], 0, [0.0, 1.0])])
    assert math.isfinite(m["nll"]) and m["nll"] == pytest.approx(-math.log(1e-12))


def test_bad_inputs_fail_loudly():
    with pytest.raises(ValueError, match="softmax"):
        run([(NAMES, 0, [2.0, -1.0, 0.5])])
    with pytest.raises(ValueError, match="3 classes"):
        run([(NAMES, 0, [0.5, 0.5])])


def test_reliability_bins():
    r = reliability_bins(np.array([0.05, 0.06, 1.0]), np.array([True, False, True]), n_bins=10)
    assert r["count"].tolist() == [2] + [0] * 8 + [1]
    assert r["accuracy"][0] == 0.5 and r["confidence"][-1] == 1.0


# ----------------------------------------------------------------------------- risk-coverage
def test_risk_coverage_hand_computed():
    ev, m = run(ITEMS)
    # confidence (max prob) 0.8 0.6 0.6 0.7 0.5 0.9, correct 1 1 0 1 0 1. Sorted: 0.9 (right),
    # 0.8 (right), 0.7 (right), 0.6 (item 1, right), 0.6 (item 2, wrong: ties keep order),
    # 0.5 (wrong) -> accuracy on the k kept: 1 1 1 1 4/5 4/6.
    rc = ev.risk_coverage
    assert rc["coverage"] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0])
    assert rc["accuracy"] == pytest.approx([1, 1, 1, 1, 4 / 5, 4 / 6])
    assert m["aurc"] == pytest.approx((0 + 0 + 0 + 0 + 1 / 5 + 2 / 6) / 6)
    assert m["acc@cov90"] == pytest.approx(4 / 6)  # ceil(5.4) = 6 items
    assert m["acc@cov80"] == pytest.approx(4 / 5)  # ceil(4.8) = 5 items
    assert rc["accuracy"][-1] == pytest.approx(m["accuracy"])


def test_risk_coverage_ties_are_stable_and_decisions_scored():
    # the same two tied items in the other order: the wrong one is referred last
    items = [ITEMS[2], ITEMS[1]]
    ev, _ = run(items)
    assert ev.risk_coverage["accuracy"] == pytest.approx([0.0, 0.5])
    # the decision (label), not argmax, decides correctness; max prob stays the confidence
    ev, m = run([(NAMES, 0, [0.2, 0.7, 0.1], 0), (NAMES, 1, [0.1, 0.6, 0.3], 0)])
    assert ev.risk_coverage["accuracy"] == pytest.approx([1.0, 0.5])
    assert m["aurc"] == pytest.approx(0.25)


def test_accuracy_at_coverage_counts():
    curve = risk_coverage(np.linspace(1, 0, 15), np.arange(15) < 12)
    # 80 % of 15 = 12 items kept, all correct; 90 %: ceil(13.5) = 14
    assert accuracy_at_coverage(curve, 80) == 1.0
    assert accuracy_at_coverage(curve, 90) == pytest.approx(12 / 14)
    assert accuracy_at_coverage(risk_coverage([0.3], [False]), 80) == 0.0
    with pytest.raises(ValueError, match="empty"):
        accuracy_at_coverage(risk_coverage([], []), 80)
    with pytest.raises(ValueError, match="decisions"):
        risk_coverage([0.5, 0.4], [True])


def test_no_ground_truth_left_after_restrict_to():
    ev, m = run(ITEMS, restrict_to=["basophil"])
    assert m == {} and ev.risk_coverage == {} and ev.confusion.shape == (0, 0)


def test_one_class_risk_coverage():
    ev, m = run([(["a"], 0, [1.0]), (["a"], 0, [1.0]), (["a"], 0, [1.0])])
    assert m["aurc"] == 0.0 and m["acc@cov80"] == 1.0
    assert ev.confusion.tolist() == [[3]] and ev.class_names == ["a"]
