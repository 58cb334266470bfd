"""An analysis scored against exact truth: the figures of the whole-smear benchmark.

Truth is a list of cell records per field as :mod:`unihema.synth.smear` writes them
(``box`` xyxy pixels, ``lineage``, ``type``, ``inside``; red cells ``infected``), or any list
of dicts with ``box`` and ``lineage`` (real annotations). Found cells are the
:class:`~unihema.analysis.records.CellRecord` list of a
:class:`~unihema.analysis.run.SmearAnalysis`.

* :func:`assign` -- each found cell goes to the truth cell of its field and lineage it
  overlaps most (IoU at least ``min_iou``, or each box holding the other's centre); a truth
  cell then holds 0 (missed), 1 (found once) or 2+ (doubled) found cells; found cells
  assigned to none are extra.
* :func:`seam_cells` -- which truth cells an analysis grid cuts: their box crosses a core cut
  (where two tiles' responsibilities meet) or an inner tile edge.
* :func:`score_smear` -- counts per lineage against truth (error in percent), the white-cell
  differential's distance (half the L1 distance, in points), parasitaemia error (points),
  and, from :func:`assign`, per lineage found once / missed / doubled / extra.

Percentages are in percent; differential distance and parasitaemia errors in points (percent
units).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from unihema.analysis.merge import Detections, overlaps
from unihema.analysis.tiles import TileGrid
from unihema.synth.layout import LINEAGES
from unihema.synth.smear import truth_summary

#: least IoU between a found box and a truth box for the found cell to be that cell (unless
#: each holds the other's centre)
MIN_IOU = 0.3


def assign(found_boxes: np.ndarray, truth_boxes: np.ndarray, min_iou: float = MIN_IOU,
           found_labels: Optional[Sequence[str]] = None,
           truth_labels: Optional[Sequence[str]] = None) -> np.ndarray:
    """``[N]`` index into ``truth_boxes [M, 4]`` of each of ``found_boxes [N, 4]``'s best
    overlap (IoU) among the truth boxes it matches, or -1 when it matches none. A pair
    matches when its IoU reaches ``min_iou`` or when each box holds the other's centre (a
    platelet of 15 px boxed by a truth box of 20 px: the same cell at an IoU near 0.3; a
    detector's boxes of small cells are tighter than the painted footprint). With both label
    lists (lineages) a found cell only matches truth cells of its own label: a red cell also
    boxed as a parasite is then one red cell found and one parasite that is not there."""
    f = np.asarray(found_boxes, np.float64).reshape(-1, 4)
    t = np.asarray(truth_boxes, np.float64).reshape(-1, 4)
    if not len(f) or not len(t):
        return np.full(len(f), -1, np.int64)
    iou = overlaps(f, t)
    ok = (iou >= min_iou) | (_holds(t, _centres(f)).T & _holds(f, _centres(t)))
    if found_labels is not None and truth_labels is not None:
        ok &= (np.asarray(found_labels, object)[:, None]
               == np.asarray(truth_labels, object)[None, :])
    score = np.where(ok, iou + 1e-9, 0.0)
    best = score.argmax(1)
    return np.where(score[np.arange(len(f)), best] > 0, best, -1)


def _centres(b: np.ndarray) -> np.ndarray:
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], 1)


def _holds(boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``[len(boxes), len(points)]``: the point lies in the box."""
    x, y = points[None, :, 0], points[None, :, 1]
    return ((boxes[:, 0:1] <= x) & (x <= boxes[:, 2:3]) & (boxes[:, 1:2] <= y)
            & (y <= boxes[:, 3:4]))


def hits(found_boxes: np.ndarray, truth_boxes: np.ndarray, min_iou: float = MIN_IOU,
         found_labels: Optional[Sequence[str]] = None,
         truth_labels: Optional[Sequence[str]] = None) -> np.ndarray:
    """``[M]`` number of found cells :func:`assign` gives each truth cell."""
    a = assign(found_boxes, truth_boxes, min_iou, found_labels, truth_labels)
    return np.bincount(a[a >= 0], minlength=len(np.asarray(truth_boxes).reshape(-1, 4)))


def _cuts(starts: Sequence[int], tile: int, length: int) -> List[float]:
    ends = [min(s + tile, length) for s in starts]
    cores = [(ends[i] + starts[i + 1]) / 2.0 for i in range(len(starts) - 1)]
    edges = [float(s) for s in starts[1:]] + [float(e) for e in ends[:-1]]
    return cores + edges


def seam_cells(boxes: np.ndarray, grid: TileGrid) -> np.ndarray:
    """``[N]`` bool: the box (xyxy) crosses a line where ``grid`` hands a cell from one tile
    to the next (a core cut, or an inner tile edge, which cuts the cell off in one tile)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    xs = np.array(_cuts(grid.xs, grid.tile, grid.width))
    ys = np.array(_cuts(grid.ys, grid.tile, grid.height))
    out = np.zeros(len(b), bool)
    if len(xs):
        out |= ((b[:, 0:1] < xs[None]) & (xs[None] < b[:, 2:3])).any(1)
    if len(ys):
        out |= ((b[:, 1:2] < ys[None]) & (ys[None] < b[:, 3:4])).any(1)
    return out


def once_missed_doubled(n_hits: np.ndarray) -> Dict[str, int]:
    """How many truth cells were found once, missed, or found twice or more."""
    n = np.asarray(n_hits)
    return {"cells": int(len(n)), "found_once": int((n == 1).sum()),
            "missed": int((n == 0).sum()), "doubled": int((n >= 2).sum())}


def _pct_error(found: float, truth: float) -> Optional[float]:
    return round(100.0 * (found - truth) / truth, 2) if truth else None


def score_smear(analysis, truth: Mapping[str, Sequence[Dict[str, Any]]],
                lineages: Sequence[str] = LINEAGES, min_iou: float = MIN_IOU
                ) -> Dict[str, Any]:
    """Score ``analysis`` (a :class:`~unihema.analysis.run.SmearAnalysis`) against ``truth``
    (field name -> truth cell records of that field). Cells count when ``inside >= 0.5``
    (:func:`unihema.synth.smear.truth_summary`).

    Returns ``lineages`` (per lineage: ``truth``, ``found``, ``error_pct`` and the matching
    ``found_once`` / ``missed`` / ``doubled`` / ``extra``), ``differential`` (``truth`` and
    ``found`` percent per type, ``l1_half`` in points, ``white_cells`` found), and
    ``parasitaemia`` (``truth``, ``found``, ``error_pts``)."""
    cells = [c for f in analysis.fields for c in truth.get(f.name, [])]
    want = truth_summary(cells, fields=max(1, len(analysis.fields)))
    s = analysis.summary
    per: Dict[str, Dict[str, Any]] = {}
    match: Dict[str, Counter] = {k: Counter() for k in lineages}
    for f in analysis.fields:
        t = [c for c in truth.get(f.name, []) if c.get("inside", 1.0) >= 0.5]
        mine = [c for c in analysis.cells if c.field == f.name]
        tb = np.array([c["box"] for c in t], np.float64).reshape(-1, 4)
        fb = np.array([c.box for c in mine], np.float64).reshape(-1, 4)
        a = assign(fb, tb, min_iou, [c.lineage for c in mine], [c["lineage"] for c in t])
        n = np.bincount(a[a >= 0], minlength=len(t))
        for lin in lineages:
            sel = np.array([c["lineage"] == lin for c in t], bool)
            match[lin].update(once_missed_doubled(n[sel]) if sel.any() else {})
            match[lin]["extra"] += sum(1 for c, k in zip(mine, a) if c.lineage == lin and k < 0)
    for lin in lineages:
        found = int(s.lineages.get(lin, 0))
        true_n = int(want["lineages"].get(lin, 0))
        m = match[lin]
        per[lin] = {"truth": true_n, "found": found, "error_pct": _pct_error(found, true_n),
                    **{k: int(m.get(k, 0)) for k in ("found_once", "missed", "doubled",
                                                      "extra")}}
    diff_found = {k: round(p.percent, 2) for k, p in (s.differential or {}).items()}
    diff_truth = want["differential"]
    keys = set(diff_found) | set(diff_truth)
    l1 = 0.5 * sum(abs(diff_found.get(k, 0.0) - diff_truth.get(k, 0.0)) for k in keys)
    para_found = s.parasitaemia.percent if s.parasitaemia is not None else 0.0
    return {
        "lineages": per,
        "differential": {"truth": diff_truth, "found": diff_found,
                         "l1_half": round(l1, 2) if diff_found or diff_truth else None,
                         "white_cells": s.differential_n,
                         "truth_white_cells": want["white_cells"]},
        "parasitaemia": {"truth": want["parasitaemia"], "found": round(para_found, 3),
                         "error_pts": round(para_found - want["parasitaemia"], 3)},
    }


def truth_detector(cells: Sequence[Mapping[str, Any]], min_visible: float = 0.3):
    """``(name, window) -> Detections``: the truth boxes of ``cells`` (dicts with ``box`` and
    ``lineage``, as a synthetic field's truth holds them) clipped to the window, for cells
    showing at least ``min_visible`` of their box there; an injected detector for
    :func:`unihema.analysis.run.analyze` that sees exactly the cells that are there."""

    boxes = np.array([c["box"] for c in cells], float).reshape(-1, 4)
    labels = np.array([c["lineage"] for c in cells], object)

    def detect(name, window):
        x0, y0, x1, y1 = window
        c = np.stack([np.maximum(boxes[:, 0], x0), np.maximum(boxes[:, 1], y0),
                      np.minimum(boxes[:, 2], x1), np.minimum(boxes[:, 3], y1)], 1)
        area = np.clip(c[:, 2] - c[:, 0], 0, None) * np.clip(c[:, 3] - c[:, 1], 0, None)
        full = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        keep = (area > 0) & (area >= min_visible * full)
        return Detections(c[keep], labels[keep], np.ones(int(keep.sum())))

    return detect
