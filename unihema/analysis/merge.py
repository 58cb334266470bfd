"""Merging the detections of overlapping tiles so that every cell is counted once.

Input: the detections of each tile of a :class:`~unihema.analysis.tiles.TileGrid`, already in
global image pixels (``boxes [N, 4]`` xyxy float, ``labels [N]`` ints or strings, ``scores
[N]`` in ``[0, 1]``). Two rules, applied in order:

1. **Ownership** (the centre rule): a detection is kept only by the tile whose *core* holds
   its box centre. The cores split each overlap down its middle, so they partition the image:
   a cell no larger than the grid's overlap lies whole in the tile that owns its centre, and
   the cut-off copy another tile sees has its centre on the owner's side of the cut (cutting
   a box at a tile edge moves its centre away from that edge), so the copy is dropped. A
   detector's boxes jitter, so a cell centred on a cut could have both its copies' centres
   pushed across and be lost: each core is therefore widened by ``slack`` pixels (default a
   quarter of the overlap), and the few cells near a cut are kept by both tiles and merged
   by rule 2.
2. **Duplicates**: what survives may still repeat a cell, e.g. a cell larger than the overlap,
   seen cut off by two tiles, or a detector that boxes one cell twice. Boxes of the same label
   (``class_aware``; any label otherwise) whose overlap reaches ``threshold`` are grouped
   greedily around the best box: whole boxes (not touching a tile's inner border) before cut
   ones, then by score. Overlap is IoU between two whole boxes and IoM (intersection over the
   smaller box) when either is cut off, since a fragment is small beside the whole (``mode=
   "auto"``; ``"iou"`` or ``"iom"`` force one). IoU keeps two touching cells apart; IoM finds
   a cut-off fragment inside the box of its whole cell. When the best box of a group is
   itself cut off, the group's box becomes the union of its members (a cell larger than the
   overlap, seen in parts).

:func:`merge_tiles` returns a :class:`Merged` whose ``index`` points into the concatenated
input, so callers carry masks, probabilities or crops along.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from unihema.analysis.tiles import TileBox, TileGrid


@dataclass
class Detections:
    """Detections of one tile in global pixels: ``boxes [N, 4]`` xyxy, ``labels [N]``,
    ``scores [N]``."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        self.labels = np.asarray(self.labels)
        if self.labels.shape == (0,) and self.labels.dtype == np.float64:
            self.labels = self.labels.astype(np.int64)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        n = len(self.boxes)
        if self.labels.shape != (n,) or self.scores.shape != (n,):
            raise ValueError(f"Detections: {n} boxes but labels {self.labels.shape} and "
                             f"scores {self.scores.shape}")

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass
class Merged:
    """Merged detections: ``boxes [M, 4]``, ``labels [M]``, ``scores [M]``; ``index [M]``
    into the concatenation of the input tiles' detections (in tile order); ``tile [M]`` the
    flat tile index each came from; ``cut [M]`` whether the kept box touches an inner tile
    border (a cell larger than the overlap, its box possibly a union); ``members`` the input
    indices merged into each."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    index: np.ndarray
    tile: np.ndarray
    cut: np.ndarray
    members: List[List[int]]

    def __len__(self) -> int:
        return len(self.boxes)


def _overlap(a: np.ndarray, b: np.ndarray, mode: str) -> np.ndarray:
    """Overlap of boxes ``a[..., 4]`` and ``b[..., 4]``, broadcast against each other."""
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    if mode == "iou":
        denom = area_a + area_b - inter
    elif mode == "iom":
        denom = np.minimum(area_a, area_b)
    else:
        raise ValueError(f"overlaps: mode must be 'iou' or 'iom', got {mode!r}")
    return np.where(denom > 0, inter / np.maximum(denom, 1e-12), 0.0)


def overlaps(a: np.ndarray, b: np.ndarray, mode: str = "iou") -> np.ndarray:
    """Pairwise overlap ``[len(a), len(b)]`` of xyxy boxes: ``"iou"`` (intersection over
    union) or ``"iom"`` (intersection over the smaller area)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    return _overlap(a[:, None], b[None, :], mode)


def touches_inner_border(boxes: np.ndarray, tile: TileBox, grid: TileGrid,
                         margin: float = 1.0) -> np.ndarray:
    """``[N]`` bool: the box comes within ``margin`` px of an edge of ``tile`` that is not an
    edge of the image (the tile may have cut the cell off there)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = tile.box
    out = np.zeros(len(b), bool)
    if x0 > 0:
        out |= b[:, 0] <= x0 + margin
    if y0 > 0:
        out |= b[:, 1] <= y0 + margin
    if x1 < grid.width:
        out |= b[:, 2] >= x1 - margin
    if y1 < grid.height:
        out |= b[:, 3] >= y1 - margin
    return out


def owned(boxes: np.ndarray, tile: TileBox, slack: float = 0.0) -> np.ndarray:
    """``[N]`` bool: the box centre lies in the tile's core widened by ``slack`` px on each
    side (half-open; with no slack a centre exactly on a cut belongs to exactly one tile)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    lx, ly, hx, hy = tile.core
    lx, ly, hx, hy = lx - slack, ly - slack, hx + slack, hy + slack
    return (cx >= lx) & (cx < hx) & (cy >= ly) & (cy < hy)


def _near_pairs(b: np.ndarray) -> tuple:
    """Index pairs ``(i, j)``, ``i < j``, of boxes whose centres fall in neighbouring cells of
    a grid as coarse as the largest box: every intersecting pair is among them."""
    n = len(b)
    size = max(float(np.max(b[:, 2:] - b[:, :2])), 1.0)
    kx = np.floor((b[:, 0] + b[:, 2]) / 2 / size).astype(np.int64)
    ky = np.floor((b[:, 1] + b[:, 3]) / 2 / size).astype(np.int64)
    kx, ky = kx - kx.min() + 1, ky - ky.min() + 1
    rows = int(ky.max()) + 2
    key = kx * rows + ky
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    pi, pj = [], []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            target = (kx + dx) * rows + (ky + dy)
            lo = np.searchsorted(sorted_key, target, "left")
            cnt = np.searchsorted(sorted_key, target, "right") - lo
            total = int(cnt.sum())
            if not total:
                continue
            i = np.repeat(np.arange(n), cnt)
            step = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            j = order[np.repeat(lo, cnt) + step]
            keep = i < j
            pi.append(i[keep])
            pj.append(j[keep])
    if not pi:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(pi), np.concatenate(pj)


def dedupe(boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray,
           cut: Optional[np.ndarray] = None, threshold: float = 0.5, mode: str = "auto",
           class_aware: bool = True) -> List[List[int]]:
    """Greedy grouping of duplicate boxes: lists of indices, the first of each the kept one.

    Order: boxes not ``cut`` first, then by descending score (ties: input order). A box joins
    the group of the first kept box of its label (any label without ``class_aware``) that it
    overlaps by ``>= threshold`` (:func:`overlaps` with ``mode``; ``"auto"``: IoU between
    whole boxes, IoM when either is ``cut``). Only neighbouring boxes are compared
    (:func:`_near_pairs`), so the cost follows the number of boxes, not its square.
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    n = len(b)
    if n == 0:
        return []
    if threshold <= 0:
        raise ValueError(f"dedupe: threshold must be positive, got {threshold}")
    labels = np.asarray(labels)
    cut = np.zeros(n, bool) if cut is None else np.asarray(cut, bool)
    order = sorted(range(n), key=lambda i: (bool(cut[i]), -float(scores[i]), i))
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    i, j = _near_pairs(b)
    if class_aware and len(i):
        same = labels[i] == labels[j]
        i, j = i[same], j[same]
    if mode == "auto":
        ov = np.where(cut[i] | cut[j], _overlap(b[i], b[j], "iom"), _overlap(b[i], b[j], "iou"))
    else:
        ov = _overlap(b[i], b[j], mode)
    hit = ov >= threshold
    neighbours: dict = {}
    for a, c in zip(i[hit].tolist(), j[hit].tolist()):
        neighbours.setdefault(a, []).append(c)
        neighbours.setdefault(c, []).append(a)
    groups: List[List[int]] = []
    taken = np.zeros(n, bool)
    for k in order:
        if taken[k]:
            continue
        group = [k]
        taken[k] = True
        for m in sorted(neighbours.get(k, ()), key=lambda m: rank[m]):
            if not taken[m]:
                group.append(m)
                taken[m] = True
        groups.append(group)
    return groups


def merge_tiles(grid: TileGrid, per_tile: Sequence[Detections], threshold: float = 0.5,
                mode: str = "auto", class_aware: bool = True, ownership: bool = True,
                margin: float = 1.0, slack: Optional[float] = None) -> Merged:
    """Merge the detections of every tile of ``grid`` (``per_tile[i]`` for tile ``i``, in
    global pixels) into one list in which each cell appears once (see the module docstring).

    ``ownership=False`` skips the centre rule (duplicates are then resolved by overlap alone).
    ``margin`` (px) is how close to an inner tile edge a box counts as cut off; ``slack``
    (px, default ``grid.overlap / 4``) widens each core for the centre rule.
    """
    slack = grid.overlap / 4.0 if slack is None else float(slack)
    tiles = grid.tiles()
    if len(per_tile) != len(tiles):
        raise ValueError(f"merge_tiles: {len(per_tile)} detection lists for a grid of "
                         f"{len(tiles)} tiles")
    parts = []
    offset = 0
    for t, det in zip(tiles, per_tile):
        n = len(det)
        keep = np.flatnonzero(owned(det.boxes, t, slack) if ownership else np.ones(n, bool))
        cuts = touches_inner_border(det.boxes, t, grid, margin)
        parts.append((det.boxes[keep], det.labels[keep], det.scores[keep],
                      np.full(len(keep), t.index, np.int64), cuts[keep], offset + keep))
        offset += n
    parts = [p for p in parts if len(p[0])]  # empty tiles may carry another label dtype
    if not parts:
        label_dtype = per_tile[0].labels.dtype if per_tile else np.int64
        return Merged(np.zeros((0, 4)), np.zeros(0, label_dtype), np.zeros(0),
                      np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool), [])
    b, lab, sc, tile_a, cut_a, index_a = (np.concatenate(col) for col in zip(*parts))
    groups = dedupe(b, lab, sc, cut_a, threshold, mode, class_aware)
    out_boxes = []
    for g in groups:
        first = g[0]
        if cut_a[first] and len(g) > 1:  # a cell larger than the overlap, seen in parts
            m = b[g]
            out_boxes.append([m[:, 0].min(), m[:, 1].min(), m[:, 2].max(), m[:, 3].max()])
        else:
            out_boxes.append(b[first])
    keep = [g[0] for g in groups]
    return Merged(np.asarray(out_boxes, np.float64).reshape(-1, 4), lab[keep], sc[keep],
                  index_a[keep], tile_a[keep], cut_a[keep],
                  [[int(index_a[j]) for j in g] for g in groups])
