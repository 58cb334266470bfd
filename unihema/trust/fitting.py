"""Fitting a :class:`~unihema.trust.state.TrustState` on held-out cells, and scoring one.

Works on :class:`Cells`: what the model gave for every cell of a split (raw logits over the
trained classes, unit-norm embeddings) with each cell's true type. Running a model over
configured data to get them is :mod:`unihema.benchmark.trust_cells`.

:func:`fit_state`, on the validation (calibration) cells of the trained types:

1. temperature: the NLL-minimising softmax temperature, by the grid and refinement of
   :meth:`unihema.modeling.heads.cell.ClassifyHead.calibrate` (vectorised here);
2. conformal: non-randomised APS thresholds at each level (:mod:`unihema.trust.conformal`);
3. unknown scorers: fitted on the *training* cells (class means, kNN bank) and the model's
   class-name embeddings; each one's threshold keeps 95 % of the validation cells;
4. referral: the lowest confidence threshold at which the validation cells the model decides
   alone (not flagged unknown, confidence at or above it) reach the target accuracy.

:func:`evaluate_state` scores a state on test cells, which may hold types never trained on.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from unihema.trust.conformal import LEVELS, U, aps_sets, fit_aps, set_metrics
from unihema.trust.metrics import (calibration_metrics, choose_referral_threshold,
                                   open_set_metrics, referral_metrics)
from unihema.trust.state import TrustState
from unihema.trust.unknown import UNKNOWN_SCORERS, FitData, build_scorer, threshold_at_tpr


@dataclass
class Cells:
    """The model's view of the cells of one split.

    ``logits [N, C]`` raw, over ``classes``; ``embeddings [N, D]`` unit-norm; ``names``: each
    cell's true type (a name outside ``classes`` is a type the model was not trained on);
    ``source``: where they come from, for reports.
    """

    logits: torch.Tensor
    embeddings: torch.Tensor
    names: List[str]
    classes: List[str]
    source: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def labels(self) -> torch.Tensor:
        """``[N]`` index of each cell's type in ``classes``; ``-1`` for an untrained type."""
        index = {c: i for i, c in enumerate(self.classes)}
        return torch.tensor([index.get(n, -1) for n in self.names], dtype=torch.long)

    @property
    def known(self) -> torch.Tensor:
        """``[N]`` bool: the cell's type is one of ``classes``."""
        return self.labels >= 0

    def select(self, mask: torch.Tensor) -> "Cells":
        """The cells where ``mask [N]`` (bool) is true."""
        keep = mask.nonzero().flatten().tolist()
        return Cells(self.logits[keep], self.embeddings[keep], [self.names[i] for i in keep],
                     list(self.classes), self.source, dict(self.extra))


# the search of ClassifyHead.calibrate: a coarse geometric grid, then two refinements
_GRID = [0.25 * 1.25 ** i for i in range(20)]
_REFINE = (0.05, 0.01)


@torch.no_grad()
def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The softmax temperature minimising the mean NLL of ``labels [N]`` under
    ``logits [N, C] / T`` (1.0 when there are no cells)."""
    if labels.numel() == 0:
        return 1.0
    logits, labels = logits.double(), labels.long()

    def nll(t: float) -> float:
        return float(torch.nn.functional.cross_entropy(logits / t, labels))

    best = min(_GRID, key=nll)
    for step in _REFINE:
        best = min((best * (1 + step * k) for k in range(-4, 5)), key=nll)
    return float(best)


def fit_state(val: Cells, train: Optional[Cells] = None, *,
              method: Optional[str] = None, methods: Optional[Sequence[str]] = None,
              params: Optional[Dict[str, Dict[str, Any]]] = None,
              embed_names: Optional[Callable[[Sequence[str]], torch.Tensor]] = None,
              logit_scale: Optional[float] = None,
              levels: Sequence[str] = LEVELS, level: str = "0.90", tpr: float = 0.95,
              target_accuracy: float = 0.98, conformal_u: float = U,
              fitted_on: Optional[Dict[str, Any]] = None) -> TrustState:
    """A :class:`TrustState` fitted on the known cells of ``val`` (see the module docstring).

    ``method``: the scorer whose flag the state gives (default ``names`` when
    ``embed_names`` is given, the best on the synthetic protocol, else ``knn``); ``methods``:
    every scorer to fit and save (default: each registered one whose inputs are at hand);
    ``params``: options per scorer; ``train``: the training cells (default ``val``) for the
    embedding scorers; ``embed_names``: the model's class-name embedder (the ``names``
    scorer, and the state's ``class_embeddings`` with ``logit_scale``).
    """
    classes = list(val.classes)
    known = val.select(val.known)
    if len(known) == 0:
        raise ValueError(f"{val.source or 'validation'}: no cell of the trained types "
                         f"{classes} to fit on")
    train = (train or val)
    train = train.select(train.known)
    params = dict(params or {})
    method = method or ("names" if embed_names is not None else "knn")
    if methods is None:
        methods = [m for m in UNKNOWN_SCORERS.names()
                   if m != "names" or embed_names is not None]
    methods = list(dict.fromkeys([*methods, method]))

    temperature = fit_temperature(known.logits, known.labels)
    probs = (known.logits.float() / temperature).softmax(-1)
    conformal = {lv: fit_aps(probs, known.labels, float(lv), conformal_u) for lv in levels}

    data = FitData(train.embeddings, train.labels, classes, embed_names)
    tensors: Dict[str, torch.Tensor] = {}
    scorers: Dict[str, Dict[str, Any]] = {}
    thresholds: Dict[str, float] = {}
    for m in methods:
        scorer = build_scorer(m, params.get(m))
        fitted = scorer.fit(data)
        tensors.update({f"{m}.{k}": v for k, v in fitted.items()})
        scorers[m] = scorer.params()
        scores = scorer.score(known.logits, known.embeddings, fitted, temperature)
        thresholds[m] = threshold_at_tpr(scores, tpr)
    if embed_names is not None:
        tensors["class_embeddings"] = embed_names(classes).float().contiguous()
    if logit_scale is not None:
        tensors["logit_scale"] = torch.tensor([float(logit_scale)])

    state = TrustState(classes=classes, temperature=temperature, conformal=conformal,
                       unknown_method=method, unknown_threshold=thresholds[method],
                       referral_threshold=1.0, level=level, target_accuracy=target_accuracy,
                       unknown_params=scorers[method], scorers=scorers,
                       thresholds=thresholds, conformal_u=conformal_u, tensors=tensors)
    # referral: among the validation cells not flagged unknown
    flagged = state.unknown_scores(known.logits, known.embeddings) > state.unknown_threshold
    conf, pred = probs.max(1)
    correct = (pred == known.labels).numpy()
    keep = (~flagged).numpy()
    state.referral_threshold = min(1.0, choose_referral_threshold(conf.numpy()[keep],
                                                                  correct[keep],
                                                                  target_accuracy))
    state.fitted_on = dict(fitted_on or {}, val_cells=len(known), train_cells=len(train),
                           tpr=tpr, date=_dt.datetime.now(_dt.timezone.utc)
                           .strftime("%Y-%m-%dT%H:%M:%SZ"))
    return state


def evaluate_state(state: TrustState, cells: Cells,
                   methods: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Every trust metric of ``state`` on ``cells`` (their logits over the state's classes).

    Keys: ``cells`` / ``known`` / ``unknown`` counts; ``calibration`` (on the known cells, at
    the fitted temperature) and ``uncalibrated`` (at T = 1); ``conformal`` per level
    (coverage, mean set size, on the known cells); ``open_set`` per method (needs unknown
    cells) with ``flagged_known`` / ``flagged_unknown`` at the state's thresholds and the
    AUROC ``per_type`` of unknown cell;
    ``referral``: on the known cells, and ``referral_all`` over every cell (a decided cell of
    an untrained type counts as an error).
    """
    if list(cells.classes) != list(state.classes):
        raise ValueError(f"the cells' logits are over {cells.classes}; the state's classes "
                         f"are {state.classes}")
    known_mask = cells.known
    known = cells.select(known_mask)
    out: Dict[str, Any] = {"source": cells.source, "cells": len(cells), "known": len(known),
                           "unknown": len(cells) - len(known)}
    probs_k = state.calibrated(known.logits)
    out["calibration"] = calibration_metrics(probs_k, known.labels)
    out["uncalibrated"] = calibration_metrics(known.logits.float().softmax(-1), known.labels)
    out["conformal"] = {}
    for lv, qhat in state.conformal.items():
        sets = aps_sets(probs_k, qhat, state.conformal_u)
        out["conformal"][lv] = set_metrics(sets, known.labels.tolist())

    methods = list(methods or state.scorers or [state.unknown_method])
    out["open_set"] = {}
    for m in methods:
        s = state.unknown_scores(cells.logits, cells.embeddings, method=m).numpy()
        s_known, s_unknown = s[known_mask.numpy()], s[~known_mask.numpy()]
        row = open_set_metrics(s_known, s_unknown)
        names = np.array(cells.names)[~known_mask.numpy()]
        row["per_type"] = {n: open_set_metrics(s_known, s_unknown[names == n])["auroc"]
                           for n in sorted(set(names.tolist()))}
        t = state.thresholds.get(m)
        if t is not None:
            row["flagged_known"] = float(np.mean(s_known > t)) if len(s_known) else float("nan")
            row["flagged_unknown"] = (float(np.mean(s_unknown > t)) if len(s_unknown)
                                      else float("nan"))
        out["open_set"][m] = row

    verdicts = state.assess(cells.logits, cells.embeddings)
    decided = np.array([not v.refer for v in verdicts])
    pred = np.array([state.classes.index(v.label) for v in verdicts])
    labels = cells.labels.numpy()
    correct = pred == labels  # never true for an untrained type (label -1)
    km = known_mask.numpy()
    out["referral"] = referral_metrics(decided[km], correct[km])
    out["referral_all"] = referral_metrics(decided, correct, unknown=~km)
    out["referral"]["threshold"] = state.referral_threshold
    return out


__all__ = ["Cells", "evaluate_state", "fit_state", "fit_temperature"]
