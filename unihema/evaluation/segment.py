"""Semantic segmentation evaluator: dataset-level Dice and IoU per class, pixel accuracy.

Inputs per batch (see :mod:`unihema.pipeline.collate`)::

    batch["classes"][i]   list[str], class names of item i ("background" first)
    batch["masks"]        int64 [B, H, W], indices into batch["classes"][i]; -1 on padding
                          and on pixels the annotation ignores

Prediction per item::

    {"mask": int [h, w]}  indices into batch["classes"][i]

``h, w`` is either the item's own (unpadded) size or the padded batch size ``H, W``: the
prediction is laid at the top left like the item's image, and only pixels where the ground truth
is not -1 are scored. A prediction smaller than the item's annotated region is an error.

Intersections and unions are summed per class NAME over the whole dataset before dividing
(not a mean of per-image scores, which small or empty images would dominate).

Metrics returned by :meth:`SegmentEvaluator.evaluate`:

* ``dice/<name>`` = 2 |P & G| / (|P| + |G|) and ``iou/<name>`` = |P & G| / |P | G| for every
  class that is predicted or present in the ground truth;
* ``mean_dice_fg``, ``mean_iou_fg``: means over the classes other than "background" that occur
  in the ground truth (0.0 when there are none);
* ``pixel_accuracy``: correct pixels / scored pixels.

After ``evaluate()``: ``ev.confusion`` (numpy int64 [C, C] pixel counts, rows = truth) and
``ev.class_names``.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping

import numpy as np

from unihema.evaluation import EVALUATORS, Evaluator

logger = logging.getLogger(__name__)

IGNORE_INDEX = -1
BACKGROUND = "background"


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.int64)


@EVALUATORS.register("segment")
class SegmentEvaluator(Evaluator):
    """Dice / IoU per class accumulated over the dataset (see the module docstring)."""

    task = "segment"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._names: Dict[str, int] = {}
        self._confusion = np.zeros((0, 0), np.int64)
        self.confusion = np.zeros((0, 0), np.int64)
        self.class_names: List[str] = []

    def _index(self, names: List[str]) -> np.ndarray:
        for n in names:
            self._names.setdefault(n, len(self._names))
        grow = len(self._names) - self._confusion.shape[0]
        if grow > 0:
            self._confusion = np.pad(self._confusion, ((0, grow), (0, grow)))
        return np.array([self._names[n] for n in names], dtype=np.int64)

    def process(self, batch: Mapping[str, Any], predictions: List[Dict[str, Any]]) -> None:
        classes = batch["classes"]
        masks = _as_numpy(batch["masks"])
        if not len(predictions) == len(classes) == masks.shape[0]:
            raise ValueError(f"{len(predictions)} predictions for a batch of {masks.shape[0]} "
                             f"items")
        for i, pred in enumerate(predictions):
            names = [str(c) for c in classes[i]]
            to_global = self._index(names)
            gt = masks[i]
            pm = _as_numpy(pred["mask"])
            if pm.ndim != 2:
                raise ValueError(f"item {i}: predicted mask must be [H, W], got {pm.shape}")
            h, w = pm.shape
            if h > gt.shape[0] or w > gt.shape[1]:
                raise ValueError(f"item {i}: predicted mask {pm.shape} is larger than the padded "
                                 f"batch mask {gt.shape}")
            outside = gt.copy()
            outside[:h, :w] = IGNORE_INDEX
            if (outside != IGNORE_INDEX).any():
                raise ValueError(
                    f"item {i}: predicted mask {pm.shape} does not cover the annotated region; "
                    f"give it at the item's size or at the padded size {gt.shape}"
                )
            gt = gt[:h, :w]
            valid = gt != IGNORE_INDEX
            g, p = gt[valid], pm[valid]
            if g.size == 0:
                continue
            if p.min() < 0 or p.max() >= len(names):
                raise ValueError(f"item {i}: predicted indices {np.unique(p).tolist()} out of "
                                 f"range for its {len(names)} classes {names}")
            if g.min() < 0 or g.max() >= len(names):
                raise ValueError(f"item {i}: ground-truth indices {np.unique(g).tolist()} out "
                                 f"of range for its {len(names)} classes {names}")
            c = len(names)
            local = np.bincount(g * c + p, minlength=c * c).reshape(c, c)
            self._confusion[np.ix_(to_global, to_global)] += local

    def evaluate(self) -> Dict[str, float]:
        total = int(self._confusion.sum())
        if total == 0:
            logger.warning("SegmentEvaluator.evaluate() called before any pixel was scored")
            return {}
        cm = self._confusion
        inter = np.diag(cm).astype(np.float64)
        gt_area = cm.sum(axis=1).astype(np.float64)
        pred_area = cm.sum(axis=0).astype(np.float64)
        out: Dict[str, float] = {}
        dice_fg: List[float] = []
        iou_fg: List[float] = []
        for name, k in self._names.items():
            denom = gt_area[k] + pred_area[k]
            if denom == 0:
                continue
            dice = float(2.0 * inter[k] / denom)
            iou = float(inter[k] / (denom - inter[k]))
            out[f"dice/{name}"] = dice
            out[f"iou/{name}"] = iou
            if name != BACKGROUND and gt_area[k] > 0:
                dice_fg.append(dice)
                iou_fg.append(iou)
        out["mean_dice_fg"] = float(np.mean(dice_fg)) if dice_fg else 0.0
        out["mean_iou_fg"] = float(np.mean(iou_fg)) if iou_fg else 0.0
        out["pixel_accuracy"] = float(inter.sum() / total)
        self.class_names = list(self._names)
        self.confusion = cm.copy()
        return out


__all__ = ["SegmentEvaluator"]
