"""Classification evaluator: accuracy, balanced accuracy, F1, confusion, calibration.

Inputs per batch (see :mod:`unihema.pipeline.collate`)::

    batch["classes"][i]   list[str], the candidate class names of item i
    batch["labels"]       int64 [B], index of the true class in batch["classes"][i]

Prediction per item::

    {"probs": float [C_i] in [0, 1] over batch["classes"][i], "label": int index}

``label`` is the decision (it may differ from ``argmax(probs)``, e.g. after thresholds);
when absent, ``argmax(probs)`` is used. Accuracy and F1 score the decision; ECE and NLL score
the probabilities. Items may come with different candidate lists: classes are identified by
NAME over the whole dataset, in the order first seen.

Metrics returned by :meth:`ClassifyEvaluator.evaluate`:

* ``accuracy`` (micro), ``macro_f1`` and ``weighted_f1`` (torchmetrics, multiclass over the
  class names seen; macro averaging skips classes that are neither true nor predicted anywhere).
* ``balanced_accuracy``: mean recall over the classes that occur as ground truth. Computed from
  the confusion matrix because torchmetrics' macro recall also averages in classes that were
  only predicted (recall 0/0 counted as 0), which is not balanced accuracy.
* ``ece``: top-label expected calibration error, 15 equal-width bins, L1 (torchmetrics
  ``multiclass_calibration_error``); ``nll``: mean ``-log p(true class)`` (p clipped at 1e-12).
* ``f1/<name>`` for each class that is true or predicted at least once.
* Selective classification, where the least confident items are referred to an expert:
  items are sorted by confidence (``max(probs)``) descending, ties kept in processing order
  (a stable sort); keeping the first ``k`` of ``n`` items gives coverage ``k / n`` and the
  accuracy of the decisions on them. ``aurc``: area under the risk (= 1 - accuracy) versus
  coverage curve, the mean risk over the coverages ``1/n, 2/n, ..., 1`` (lower is better;
  lowest when every error is less confident than every right decision). ``acc@cov90`` /
  ``acc@cov80``: accuracy on the ``ceil(0.9 n)`` / ``ceil(0.8 n)`` most confident items.

After ``evaluate()``: ``ev.confusion`` (numpy int64 [C, C], rows = truth, columns =
prediction), ``ev.class_names`` (the C names), ``ev.per_class`` (name -> precision, recall, f1,
support), ``ev.reliability`` (dict of 15-bin arrays: ``confidence``, ``accuracy``,
``count``) for reliability diagrams, and ``ev.risk_coverage`` (dict of float arrays ``[n]``:
``coverage`` = k / n and ``accuracy`` on the k most confident items, k = 1..n) for
risk-coverage curves. All of them are empty before the first ``evaluate()`` with items.

Option ``restrict_to``: evaluate only the items whose true class name is in the list (e.g. the
white-cell crops of a dataset that also holds red cells, for "white-cell type macro-F1").
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multiclass_calibration_error,
    multiclass_confusion_matrix,
    multiclass_f1_score,
)

from unihema.evaluation import EVALUATORS, Evaluator

logger = logging.getLogger(__name__)

N_BINS = 15
NLL_EPS = 1e-12


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS
                     ) -> Dict[str, np.ndarray]:
    """Per-bin mean confidence, accuracy and count over ``n_bins`` equal bins of [0, 1]."""
    idx = np.clip((confidence * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.int64)
    conf_sum = np.bincount(idx, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=correct.astype(np.float64), minlength=n_bins)
    safe = np.maximum(count, 1)
    return {"edges": np.linspace(0.0, 1.0, n_bins + 1), "confidence": conf_sum / safe,
            "accuracy": acc_sum / safe, "count": count}


def risk_coverage(confidence: np.ndarray, correct: np.ndarray) -> Dict[str, np.ndarray]:
    """Accuracy on the ``k`` most confident items, ``k = 1..n``.

    Args:
        confidence: float ``[n]``, the confidence of each decision (higher = surer).
        correct: bool ``[n]``, whether each decision is right.

    Returns:
        ``{"coverage": float [n] = k / n, "accuracy": float [n]}``; items of equal confidence
        keep their input order (stable sort), so the curve is reproducible. Empty arrays for
        ``n = 0``.
    """
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct, dtype=np.float64).reshape(-1)
    if confidence.shape != correct.shape:
        raise ValueError(f"{confidence.shape[0]} confidences for {correct.shape[0]} decisions")
    order = np.argsort(-confidence, kind="stable")
    kept = np.arange(1, len(order) + 1, dtype=np.float64)
    return {"coverage": kept / max(len(order), 1),
            "accuracy": np.cumsum(correct[order]) / kept}


def accuracy_at_coverage(curve: Dict[str, np.ndarray], percent: int) -> float:
    """Accuracy on the ``ceil(n * percent / 100)`` most confident items of a
    :func:`risk_coverage` curve (computed in integers, at least one item)."""
    n = len(curve["accuracy"])
    if n == 0:
        raise ValueError("empty risk-coverage curve")
    if not 0 < percent <= 100:
        raise ValueError(f"coverage percent must be in (0, 100], got {percent}")
    k = max(1, -(-n * int(percent) // 100))
    return float(curve["accuracy"][k - 1])


@EVALUATORS.register("classify")
class ClassifyEvaluator(Evaluator):
    """Classification metrics over a dataset (see the module docstring).

    Args:
        restrict_to: class names; only items whose true class is listed are evaluated.
            ``None`` evaluates every item.
    """

    task = "classify"

    def __init__(self, *, restrict_to: Optional[Sequence[str]] = None) -> None:
        if isinstance(restrict_to, str):
            raise TypeError(f"restrict_to must be a list of class names, got the string "
                            f"{restrict_to!r}")
        self.restrict_to = None if restrict_to is None else set(restrict_to)
        self.reset()

    def reset(self) -> None:
        self._names: Dict[str, int] = {}
        # Per item: true name, predicted name, candidate names, probabilities over them.
        self._true: List[str] = []
        self._pred: List[str] = []
        self._cands: List[List[str]] = []
        self._probs: List[np.ndarray] = []
        self.confusion = np.zeros((0, 0), np.int64)
        self.class_names: List[str] = []
        self.per_class: Dict[str, Dict[str, float]] = {}
        self.reliability: Dict[str, np.ndarray] = {}
        self.risk_coverage: Dict[str, np.ndarray] = {}

    def process(self, batch: Mapping[str, Any], predictions: List[Dict[str, Any]]) -> None:
        classes = batch["classes"]
        labels = batch["labels"]
        labels = labels.tolist() if hasattr(labels, "tolist") else list(labels)
        if not len(predictions) == len(classes) == len(labels):
            raise ValueError(f"{len(predictions)} predictions for a batch of {len(labels)} items")
        for i, pred in enumerate(predictions):
            names = [str(c) for c in classes[i]]
            true = names[int(labels[i])]
            if self.restrict_to is not None and true not in self.restrict_to:
                continue
            probs = pred["probs"]
            if hasattr(probs, "detach"):
                probs = probs.detach().float().cpu().numpy()
            probs = np.asarray(probs, dtype=np.float64).reshape(-1)
            if probs.shape[0] != len(names):
                raise ValueError(f"item {i}: {probs.shape[0]} probs for {len(names)} classes")
            if probs.size and (probs.min() < 0 or probs.max() > 1 or not np.isfinite(probs).all()):
                raise ValueError(f"item {i}: probs must be probabilities in [0, 1] (apply "
                                 f"softmax to logits first), got {probs.tolist()}")
            label = pred.get("label")
            label = int(np.argmax(probs)) if label is None else int(label)
            if not 0 <= label < len(names):
                raise ValueError(f"item {i}: predicted label {label} out of range for {names}")
            for n in names:
                self._names.setdefault(n, len(self._names))
            self._true.append(true)
            self._pred.append(names[label])
            self._cands.append(names)
            self._probs.append(probs)

    def evaluate(self) -> Dict[str, float]:
        if not self._true:
            logger.warning("ClassifyEvaluator.evaluate() called before any item was processed")
            return {}
        order = self._names
        n_cls = max(len(order), 2)  # torchmetrics' multiclass metrics need at least 2 classes
        target = torch.tensor([order[n] for n in self._true])
        preds = torch.tensor([order[n] for n in self._pred])
        full = np.zeros((len(self._true), n_cls))
        for r, (names, p) in enumerate(zip(self._cands, self._probs)):
            full[r, [order[n] for n in names]] = p
        probs = torch.from_numpy(full)

        confusion = multiclass_confusion_matrix(preds, target, num_classes=n_cls).numpy()
        f1_each = multiclass_f1_score(preds, target, num_classes=n_cls, average=None).numpy()
        support = confusion.sum(axis=1)
        predicted = confusion.sum(axis=0)
        tp = np.diag(confusion)
        present = support > 0
        out: Dict[str, float] = {
            "accuracy": float(tp.sum() / len(self._true)),
            "balanced_accuracy": float((tp[present] / support[present]).mean()),
            "macro_f1": float(multiclass_f1_score(preds, target, num_classes=n_cls,
                                                  average="macro")),
            "weighted_f1": float(multiclass_f1_score(preds, target, num_classes=n_cls,
                                                     average="weighted")),
            "ece": float(multiclass_calibration_error(probs, target, num_classes=n_cls,
                                                      n_bins=N_BINS, norm="l1")),
        }
        p_true = full[np.arange(len(self._true)), target.numpy()]
        # "+ 0.0" turns the -0.0 of a perfect model into 0.0 in reports
        out["nll"] = float(-np.log(np.clip(p_true, NLL_EPS, None)).mean()) + 0.0

        # Report only the classes that were true or predicted somewhere: candidate lists can
        # be long (a whole vocabulary) and unused rows would only pad the confusion matrix.
        names = list(order)
        used = [k for k in range(len(names)) if support[k] + predicted[k] > 0]
        self.class_names = [names[k] for k in used]
        self.confusion = confusion[np.ix_(used, used)].astype(np.int64)
        self.per_class = {}
        for k in used:
            name = names[k]
            self.per_class[name] = {
                "precision": float(tp[k] / predicted[k]) if predicted[k] else 0.0,
                "recall": float(tp[k] / support[k]) if support[k] else 0.0,
                "f1": float(f1_each[k]),
                "support": float(support[k]),
            }
            out[f"f1/{name}"] = float(f1_each[k])
        conf, arg = probs.max(dim=1)
        self.reliability = reliability_bins(conf.numpy(), (arg == target).numpy())
        # Referral scores the decisions (``label``), ranked by the top probability.
        decided = np.array([t == p for t, p in zip(self._true, self._pred)])
        self.risk_coverage = risk_coverage(conf.numpy(), decided)
        out["aurc"] = float(np.mean(1.0 - self.risk_coverage["accuracy"]))
        out["acc@cov90"] = accuracy_at_coverage(self.risk_coverage, 90)
        out["acc@cov80"] = accuracy_at_coverage(self.risk_coverage, 80)
        return out


__all__ = ["ClassifyEvaluator", "accuracy_at_coverage", "reliability_bins", "risk_coverage"]
