"""How honest the doubt is: calibration, open-set and selective-prediction metrics.

Calibration of calibrated ``probs [N, C]`` against int ``labels [N]``:

* ``ece``: top-label expected calibration error over **15 equal-width bins** of the top
  probability, L1 (the definition of the classify evaluator's ``ece``,
  :mod:`unihema.evaluation.classify`);
* ``nll``: mean negative log-likelihood of the true class (natural log);
* ``brier``: mean over cells of the squared distance between ``probs`` and the one-hot label,
  summed over classes (0 is perfect, 2 the worst);
* ``reliability``: per bin ``edges`` (16), mean ``confidence``, ``accuracy`` and ``count``, the
  input of :func:`unihema.evaluation.plots.plot_reliability`.

Open set, from unknown scores of known and unknown cells (unknown cells are the positives):
``auroc``; ``fpr@95tpr``: the share of unknown cells *not* flagged when the threshold keeps
95 % of known cells (lower is better); ``aupr``: average precision of finding the unknown cells.

Referral, from per-cell confidence and correctness: :func:`choose_referral_threshold` picks on
validation the lowest confidence threshold whose decided cells reach a target accuracy;
:func:`referral_metrics` reports the coverage (share decided alone) and their accuracy.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch

#: reliability bins, as the classify evaluator
N_BINS = 15


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS
                     ) -> Dict[str, np.ndarray]:
    """Per-bin mean confidence, accuracy and count over ``n_bins`` equal bins of [0, 1]."""
    confidence = np.asarray(confidence, dtype=np.float64)
    idx = np.clip((confidence * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.int64)
    conf_sum = np.bincount(idx, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=np.asarray(correct, dtype=np.float64), minlength=n_bins)
    safe = np.maximum(count, 1)
    return {"edges": np.linspace(0.0, 1.0, n_bins + 1), "confidence": conf_sum / safe,
            "accuracy": acc_sum / safe, "count": count}


def calibration_metrics(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = N_BINS
                        ) -> Dict[str, object]:
    """``{accuracy, ece, nll, brier, n, reliability}`` of calibrated ``probs [N, C]``."""
    probs, labels = probs.double(), labels.long()
    n = int(labels.numel())
    if n == 0:
        nan = float("nan")
        return {"accuracy": nan, "ece": nan, "nll": nan, "brier": nan, "n": 0,
                "reliability": reliability_bins(np.zeros(0), np.zeros(0), n_bins)}
    conf, pred = probs.max(1)
    correct = (pred == labels).numpy()
    rel = reliability_bins(conf.numpy(), correct, n_bins)
    ece = float(np.sum(rel["count"] * np.abs(rel["confidence"] - rel["accuracy"])) / n)
    true_p = probs.gather(1, labels[:, None]).squeeze(1).clamp(min=1e-12)
    onehot = torch.nn.functional.one_hot(labels, probs.shape[1]).double()
    return {"accuracy": float(correct.mean()), "ece": ece, "nll": float(-true_p.log().mean()),
            "brier": float(((probs - onehot) ** 2).sum(1).mean()), "n": n, "reliability": rel}


def auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """Probability that an unknown cell scores above a known one (ties count half)."""
    known, unknown = np.asarray(known, np.float64), np.asarray(unknown, np.float64)
    if len(known) == 0 or len(unknown) == 0:
        return float("nan")
    allv = np.concatenate([known, unknown])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_v)) + 1]
    ends = np.r_[starts[1:], len(allv)]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = (s + e + 1) / 2.0
    r_unknown = ranks[len(known):].sum()
    n_u, n_k = len(unknown), len(known)
    return float((r_unknown - n_u * (n_u + 1) / 2.0) / (n_u * n_k))


def fpr_at_tpr(known: np.ndarray, unknown: np.ndarray, tpr: float = 0.95) -> float:
    """Share of unknown cells scoring at or under the threshold that keeps ``tpr`` of the known
    cells (the unknown cells such a threshold lets through)."""
    known, unknown = np.asarray(known, np.float64), np.asarray(unknown, np.float64)
    if len(known) == 0 or len(unknown) == 0:
        return float("nan")
    threshold = np.quantile(known, tpr)
    return float(np.mean(unknown <= threshold))


def aupr(known: np.ndarray, unknown: np.ndarray) -> float:
    """Average precision of ranking unknown cells (positives) first by score."""
    known, unknown = np.asarray(known, np.float64), np.asarray(unknown, np.float64)
    if len(known) == 0 or len(unknown) == 0:
        return float("nan")
    scores = np.concatenate([known, unknown])
    positive = np.r_[np.zeros(len(known)), np.ones(len(unknown))]
    order = np.argsort(-scores, kind="mergesort")
    scores, positive = scores[order], positive[order]
    # one precision/recall point per distinct threshold
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tp = np.cumsum(positive)[last]
    precision = tp / (last + 1)
    recall = tp / len(unknown)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_curve(known: np.ndarray, unknown: np.ndarray) -> Dict[str, np.ndarray]:
    """``fpr`` (share of known cells flagged) and ``tpr`` (share of unknown cells flagged) at
    every threshold, from flagging nothing to flagging everything."""
    scores = np.concatenate([np.asarray(known, np.float64), np.asarray(unknown, np.float64)])
    positive = np.r_[np.zeros(len(known)), np.ones(len(unknown))]
    order = np.argsort(-scores, kind="mergesort")
    scores, positive = scores[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1] if len(scores) else []
    tp = np.cumsum(positive)[last] if len(scores) else np.zeros(0)
    fp = (np.asarray(last) + 1) - tp
    return {"fpr": np.r_[0.0, fp / max(len(known), 1)],
            "tpr": np.r_[0.0, tp / max(len(unknown), 1)]}


def open_set_metrics(known: np.ndarray, unknown: np.ndarray) -> Dict[str, float]:
    """``{auroc, fpr@95tpr, aupr, n_known, n_unknown}`` of unknown scores."""
    return {"auroc": auroc(known, unknown), "fpr@95tpr": fpr_at_tpr(known, unknown),
            "aupr": aupr(known, unknown), "n_known": int(len(known)),
            "n_unknown": int(len(unknown))}


def choose_referral_threshold(confidence: np.ndarray, correct: np.ndarray,
                              target: float = 0.98) -> float:
    """The lowest confidence threshold ``t`` whose decided cells (confidence >= ``t``) reach
    accuracy ``target`` on these (validation) cells, i.e. the one deciding the most cells
    alone; above every confidence (``1.0`` or more: refer all) when no threshold does."""
    confidence = np.asarray(confidence, np.float64)
    correct = np.asarray(correct, np.float64)
    if len(confidence) == 0:
        return 1.0
    order = np.argsort(-confidence, kind="mergesort")
    conf_sorted, hits = confidence[order], np.cumsum(correct[order])
    kept = np.arange(1, len(order) + 1)
    acc = hits / kept
    # only thresholds between distinct confidences: a cut keeps every tied cell
    last = np.r_[np.flatnonzero(np.diff(conf_sorted)), len(conf_sorted) - 1]
    ok = last[acc[last] >= target]
    if len(ok) == 0:  # just above the highest confidence: every cell is referred
        return float(np.nextafter(conf_sorted[0], np.inf))
    return float(conf_sorted[ok.max()])


def referral_metrics(decided: np.ndarray, correct: np.ndarray,
                     unknown: Optional[np.ndarray] = None) -> Dict[str, float]:
    """``coverage`` (share of cells decided alone), ``accuracy`` on the decided known cells,
    ``n``, and with ``unknown`` (a mask of cells of untrained types, which are never correct)
    ``unknown_decided``: the share of those decided alone anyway."""
    decided = np.asarray(decided, bool)
    correct = np.asarray(correct, bool)
    n = len(decided)
    out = {"coverage": float(decided.mean()) if n else float("nan"),
           "accuracy": float(correct[decided].mean()) if decided.any() else float("nan"),
           "n": int(n), "decided": int(decided.sum())}
    if unknown is not None:
        unknown = np.asarray(unknown, bool)
        out["unknown_decided"] = (float(decided[unknown].mean()) if unknown.any()
                                  else float("nan"))
    return out


__all__ = ["N_BINS", "aupr", "auroc", "calibration_metrics", "choose_referral_threshold",
           "fpr_at_tpr", "open_set_metrics", "referral_metrics", "reliability_bins",
           "roc_curve"]
