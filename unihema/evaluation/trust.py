"""Open-set and selective-prediction evaluators of classification, for the evaluation suite.

Both score ``classify`` items and are chosen by a suite entry's ``evaluator`` key
(:mod:`unihema.evaluation.suite`); both use the model folder's trust state
(:class:`unihema.trust.TrustState`, ``trust.json``) when it has one and the items are prompted
with its classes, else what the probabilities alone give.

**open_set** (:class:`OpenSetEvaluator`): can the model tell cells of the types it was trained
on (``known``) from cells of types it never saw? Every item is prompted with the ``known``
classes whatever its true type (:func:`open_set_samples`; in use an unseen cell comes with the
same prompt as any other), and each unknown-cell score ranks them (higher: more likely
unknown). Scores: ``msp`` (minus the top softmax probability), ``energy`` (minus the
log-sum-exp of the logits) and, with a trust state, ``trust`` (its own method and fitted
statistics, e.g. Mahalanobis or kNN on the embeddings) and every other scorer the state
fitted (``TrustState.scorers``, under its own name). Metrics per score ``s``:
``auroc/<s>`` (probability that an unknown cell scores above a known one), ``fpr@95tpr/<s>``
(share of unknown cells let through by the threshold that keeps 95 % of the known ones),
``aupr/<s>`` (average precision with unknown cells as positives); ``auroc``, ``fpr@95tpr``,
``aupr`` repeat the ``trust`` score's (``msp``'s without a state); ``n_known``,
``n_unknown``; with a state, ``flagged_known`` and ``flagged_unknown``: the shares its
threshold calls unknown. State after ``evaluate()``: ``roc`` (score -> ``{"fpr", "tpr"}``),
drawn by the ``roc`` plot.

**selective** (:class:`SelectiveEvaluator`): how many cells can the model decide alone at a
given accuracy? Items are ranked by confidence (the top calibrated probability: the trust
state's temperature, else the model's) and the least confident referred. Metrics:
``accuracy`` (no referral), ``aurc`` (mean risk over the coverages ``1/n .. 1``),
``coverage@acc<t>`` for each target ``t`` of ``targets`` (the largest share decided alone at
accuracy >= ``t`` on these items: an oracle threshold, a bound on what a threshold fitted
elsewhere achieves); with a trust state covering the items: ``referral_coverage`` and
``referral_accuracy`` (the state's own threshold, fitted on its calibration split for
``target_accuracy``), and for each conformal level ``l`` ``set_coverage@l`` (share of items
whose prediction set holds the true type) and ``set_size@l`` (mean set size). State:
``risk_coverage`` (drawn by ``risk_coverage``) and ``coverage_target`` (``targets``,
``coverage``, and the state's point), drawn by ``coverage_target``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

from unihema.evaluation import EVALUATORS, Evaluator
from unihema.evaluation import trust_plots  # noqa: F401 - registers the roc, coverage_target plots
from unihema.evaluation.classify import risk_coverage

logger = logging.getLogger(__name__)

#: scores every open-set run reports (from the logits alone)
LOGIT_SCORES = ("msp", "energy")
#: the default accuracy targets of the selective evaluator
TARGETS = (0.90, 0.95, 0.98, 0.99)
#: the sample metadata key holding a re-prompted item's true type
TRUTH_KEY = "open_set_truth"


def load_trust(path: Any) -> Optional[Any]:
    """The trust state of a model folder (or of a run folder's ``model/``), or ``None``."""
    if path is None:
        return None
    from unihema.trust.state import TrustState

    folder = Path(path)
    folder = folder / "model" if (folder / "model").is_dir() else folder
    return TrustState.load(folder) if folder.is_dir() else None


def open_set_samples(samples: Sequence[Any], known: Sequence[str]) -> List[Any]:
    """Classify samples re-prompted with the ``known`` classes: a sample of another type gets
    ``known[0]`` as a stand-in label and keeps its true type in ``meta["open_set_truth"]``
    (every sample does)."""
    known = list(known)
    return [dataclasses.replace(s, label=s.label if s.label in known else known[0],
                                label_set=known, meta={**s.meta, TRUTH_KEY: s.label})
            for s in samples]


def _finite(metrics: Dict[str, float]) -> Dict[str, float]:
    return {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}


def _probs_np(pred: Mapping[str, Any]) -> np.ndarray:
    p = pred["probs"]
    p = p.detach().float().cpu().numpy() if hasattr(p, "detach") else np.asarray(p)
    return np.asarray(p, np.float64).reshape(-1)


class _TrustMixin:
    """Reads the trust state of the model being scored (:meth:`bind`)."""

    use_trust: bool = True
    state: Optional[Any] = None

    def bind(self, dataset: Any, model: Any = None) -> None:
        """Called by :func:`unihema.evaluation.suite.score_entry` before the first batch:
        the dataset about to be scored and the model (its ``path`` locates the state)."""
        self.state = load_trust(getattr(model, "path", None)) if self.use_trust else None

    def _covers(self, classes: Sequence[str]) -> bool:
        return self.state is not None and set(classes) == set(self.state.classes) \
            and len(classes) == len(self.state.classes)

    def _inputs(self, classes: Sequence[str], pred: Mapping[str, Any]):
        """``(logits [1, C] over the state's classes, embedding [1, D] or None)``."""
        logits = self.state.align(pred["logits"].float().cpu()[None], list(classes))
        emb = pred.get("embedding")
        return logits, None if emb is None else emb.float().cpu()[None]

    def _verdicts(self, classes: Sequence[str], pred: Mapping[str, Any]):
        return self.state.assess(*self._inputs(classes, pred))[0]


@EVALUATORS.register("open_set")
class OpenSetEvaluator(_TrustMixin, Evaluator):
    """Known versus unseen cell types (module docstring).

    Args:
        known: the classes the model was trained on (every item is prompted with them).
        scores: logit-based scores to report besides the trust state's (``msp``, ``energy``).
        use_trust: use the model folder's trust state when it has one.
    """

    task = "classify"
    plots = ("roc",)

    def __init__(self, *, known: Sequence[str], scores: Sequence[str] = LOGIT_SCORES,
                 use_trust: bool = True) -> None:
        if isinstance(known, str) or not known or len(set(known)) != len(known):
            raise ValueError(f"known must list the trained classes, distinct, got {known!r}")
        bad = [s for s in scores if s not in LOGIT_SCORES]
        if bad:
            raise ValueError(f"scores {bad} are not logit scores; choose among "
                             f"{list(LOGIT_SCORES)} (the trust state's method is added as "
                             f"'trust')")
        self.known, self.scores, self.use_trust = list(known), list(scores), bool(use_trust)
        self.state = None
        self.reset()

    def prepare_samples(self, samples: Sequence[Any]) -> List[Any]:
        """The entry's samples as this evaluator scores them (:func:`open_set_samples`)."""
        return open_set_samples(samples, self.known)

    def reset(self) -> None:
        self._unknown: List[bool] = []
        self._scores: Dict[str, List[float]] = {}
        self._flagged: List[bool] = []
        self.roc: Dict[str, Dict[str, np.ndarray]] = {}

    def bind(self, dataset: Any, model: Any = None) -> None:
        super().bind(dataset, model)
        self._truth = _truth_by_key(dataset)

    def process(self, batch: Mapping[str, Any], predictions: List[Dict[str, Any]]) -> None:
        from unihema.trust.unknown import build_scorer

        for i, pred in enumerate(predictions):
            classes = [str(c) for c in batch["classes"][i]]
            if classes != self.known:
                raise ValueError(f"item {batch['keys'][i]}: prompted with {classes}, not the "
                                 f"known classes {self.known}: the open_set evaluator needs "
                                 f"the items of its entry (re-prompted by the suite)")
            truth = getattr(self, "_truth", {}).get(batch["keys"][i])
            if truth is None:
                raise ValueError(f"item {batch['keys'][i]}: no true type recorded (score it "
                                 f"through unihema.evaluation.suite.score_entry)")
            self._unknown.append(truth not in self.known)
            logits = pred["logits"].float().cpu()[None]
            temperature = float(self.state.temperature) if self.state is not None else 1.0
            for s in self.scores:
                value = build_scorer(s).score(logits, None, {}, temperature)
                self._scores.setdefault(s, []).append(float(value[0]))
            if self._covers(classes):
                logits, emb = self._inputs(classes, pred)
                v = self.state.assess(logits, emb)[0]
                self._scores.setdefault("trust", []).append(float(v.unknown_score))
                self._flagged.append(bool(v.unknown))
                for m in self._other_methods():
                    value = self.state.unknown_scores(logits, emb, m)
                    self._scores.setdefault(m, []).append(float(value[0]))

    def _other_methods(self) -> List[str]:
        """The state's other fitted scorers (``scorers``), each reported under its name."""
        fitted = getattr(self.state, "scorers", None) or {}
        return [m for m in fitted if m != self.state.unknown_method and m not in self.scores]

    def evaluate(self) -> Dict[str, float]:
        from unihema.trust.metrics import open_set_metrics, roc_curve

        unknown = np.asarray(self._unknown, bool)
        if not len(unknown):
            logger.warning("OpenSetEvaluator.evaluate() called before any item was processed")
            return {}
        out: Dict[str, float] = {"n_known": int((~unknown).sum()),
                                 "n_unknown": int(unknown.sum())}
        if not unknown.any() or unknown.all():
            logger.warning("open set: %d known and %d unknown items; AUROC needs both",
                           out["n_known"], out["n_unknown"])
        self.roc = {}
        for s, values in self._scores.items():
            v = np.asarray(values, np.float64)
            m = open_set_metrics(v[~unknown], v[unknown])
            out.update({f"{k}/{s}": m[k] for k in ("auroc", "fpr@95tpr", "aupr")})
            self.roc[s] = roc_curve(v[~unknown], v[unknown])
        head = "trust" if "trust" in self._scores else self.scores[0] if self.scores else None
        if head is not None:
            out.update({k: out[f"{k}/{head}"] for k in ("auroc", "fpr@95tpr", "aupr")})
        if self._flagged:
            flagged = np.asarray(self._flagged, bool)
            out["flagged_known"] = float(flagged[~unknown].mean()) if (~unknown).any() \
                else float("nan")
            out["flagged_unknown"] = float(flagged[unknown].mean()) if unknown.any() \
                else float("nan")
        return _finite(out)


def _truth_by_key(dataset: Any) -> Dict[str, str]:
    """Item key -> true type of the (possibly ``Subset`` of a) task dataset's samples."""
    base = getattr(dataset, "dataset", dataset)
    out: Dict[str, str] = {}
    for s in base.samples:
        truth = s.meta.get(TRUTH_KEY, s.label)
        if out.get(s.key, truth) != truth:
            raise ValueError(f"two samples share the key {s.key} with different types")
        out[s.key] = truth
    return out


@EVALUATORS.register("selective")
class SelectiveEvaluator(_TrustMixin, Evaluator):
    """Referral: coverage against accuracy (module docstring).

    Args:
        targets: accuracies (in (0, 1)) to report the oracle coverage at.
        use_trust: use the model folder's trust state when it has one.
    """

    task = "classify"
    plots = ("risk_coverage", "coverage_target")

    def __init__(self, *, targets: Sequence[float] = TARGETS, use_trust: bool = True) -> None:
        if isinstance(targets, (str, float, int)) or not targets or \
                not all(isinstance(t, (int, float)) and 0 < t < 1 for t in targets):
            raise ValueError(f"targets must be a list of accuracies in (0, 1), got {targets!r}")
        self.targets, self.use_trust = sorted(float(t) for t in targets), bool(use_trust)
        self.state = None
        self.reset()

    def reset(self) -> None:
        self._conf: List[float] = []
        self._correct: List[bool] = []
        self._refer: List[bool] = []
        self._in_set: Dict[str, List[bool]] = {}
        self._set_size: Dict[str, List[int]] = {}
        self.risk_coverage: Dict[str, np.ndarray] = {}
        self.coverage_target: Dict[str, Any] = {}

    def process(self, batch: Mapping[str, Any], predictions: List[Dict[str, Any]]) -> None:
        labels = batch["labels"]
        labels = labels.tolist() if hasattr(labels, "tolist") else list(labels)
        for i, pred in enumerate(predictions):
            classes = [str(c) for c in batch["classes"][i]]
            true = classes[int(labels[i])]
            if self._covers(classes):
                v = self._verdicts(classes, pred)
                self._conf.append(v.confidence)
                self._correct.append(v.label == true)
                self._refer.append(v.refer)
                probs = torch.tensor([[v.probs[c] for c in self.state.classes]])
                for level in sorted(self.state.conformal):
                    s = self.state.prediction_sets(probs, level)[0]
                    self._in_set.setdefault(level, []).append(true in s)
                    self._set_size.setdefault(level, []).append(len(s))
            else:
                p = _probs_np(pred)
                label = pred.get("label")
                label = int(np.argmax(p)) if label is None else int(label)
                self._conf.append(float(p.max()))
                self._correct.append(classes[label] == true)

    def evaluate(self) -> Dict[str, float]:
        if not self._conf:
            logger.warning("SelectiveEvaluator.evaluate() called before any item was processed")
            return {}
        conf, correct = np.asarray(self._conf), np.asarray(self._correct, bool)
        curve = risk_coverage(conf, correct)
        self.risk_coverage = curve
        out: Dict[str, float] = {"accuracy": float(correct.mean()),
                                 "aurc": float(np.mean(1.0 - curve["accuracy"])),
                                 "n": int(len(conf))}
        coverage = [oracle_coverage(curve, t) for t in self.targets]
        out.update({f"coverage@acc{round(100 * t, 1):g}": c
                    for t, c in zip(self.targets, coverage)})
        self.coverage_target = {"targets": np.asarray(self.targets),
                                "coverage": np.asarray(coverage)}
        judged = len(self._refer) == len(conf)
        if judged:
            decided = ~np.asarray(self._refer, bool)
            out["referral_coverage"] = float(decided.mean())
            out["referral_accuracy"] = (float(correct[decided].mean()) if decided.any()
                                        else float("nan"))
            out["referral_target"] = float(self.state.target_accuracy)
            self.coverage_target["state"] = {"target": float(self.state.target_accuracy),
                                             "coverage": out["referral_coverage"],
                                             "accuracy": out["referral_accuracy"]}
            for level, hits in self._in_set.items():
                out[f"set_coverage@{level}"] = float(np.mean(hits))
                out[f"set_size@{level}"] = float(np.mean(self._set_size[level]))
        elif self._refer:
            logger.warning("selective: the trust state covers %d of %d items (prompted with "
                           "other classes); its referral is not reported", len(self._refer),
                           len(conf))
        return _finite(out)


def oracle_coverage(curve: Mapping[str, np.ndarray], target: float) -> float:
    """The largest coverage of a :func:`~unihema.evaluation.classify.risk_coverage` curve
    whose accuracy is at least ``target`` (0 when none is)."""
    ok = np.flatnonzero(np.asarray(curve["accuracy"]) >= target - 1e-12)
    return float(curve["coverage"][ok.max()]) if len(ok) else 0.0


__all__ = ["LOGIT_SCORES", "OpenSetEvaluator", "SelectiveEvaluator", "TARGETS", "TRUTH_KEY",
           "load_trust", "open_set_samples", "oracle_coverage"]
