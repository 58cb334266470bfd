"""Seam merging: a cell on a seam, on the cut between two cores, or at the corner of four
tiles is counted once, with its whole box; duplicates of one class merge, different classes
do not; a cell larger than the overlap is pieced back together."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from unihema.analysis.merge import Detections, dedupe, merge_tiles, overlaps
from unihema.analysis.tiles import TileGrid

GRID = TileGrid(1000, 760, 256, 64)


def _detect(grid: TileGrid, cells, min_visible: float = 0.2, jitter: float = 0.0, seed=0):
    """What a detector sees on each tile: every cell's box clipped to the tile (a cut-off
    cell is boxed as far as it shows), when at least ``min_visible`` of it shows."""
    rng = np.random.default_rng(seed)
    out = []
    for t in grid:
        x0, y0, x1, y1 = t.box
        boxes, labels, scores = [], [], []
        for (bx0, by0, bx1, by1), label in cells:
            cx0, cy0 = max(bx0, x0), max(by0, y0)
            cx1, cy1 = min(bx1, x1), min(by1, y1)
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            if (cx1 - cx0) * (cy1 - cy0) < min_visible * (bx1 - bx0) * (by1 - by0):
                continue
            box = np.array([cx0, cy0, cx1, cy1], float)
            box += rng.uniform(-jitter, jitter, 4) if jitter else 0
            boxes.append(box)
            labels.append(label)
            scores.append(rng.uniform(0.5, 1.0))
        out.append(Detections(np.array(boxes).reshape(-1, 4), np.array(labels, dtype=object)
                              if labels else np.zeros(0, object), np.array(scores)))
    return out


def _cell(cx: float, cy: float, d: float, label="red blood cell"):
    return (cx - d / 2, cy - d / 2, cx + d / 2, cy + d / 2), label


def _seam_positions(grid: TileGrid):
    """x (or y) positions that matter along one axis: every tile edge inside the image, the
    cut between neighbouring cores, one pixel either side."""
    xs, ys = grid.xs, grid.ys
    def along(starts, length):
        pos = set()
        for a, b in zip(starts, starts[1:]):
            end = a + grid.tile
            for p in (b, end, (b + end) / 2):
                pos.update({p - 1, p, p + 1})
        return sorted(pos)
    return along(xs, grid.width), along(ys, grid.height)


def _assert_each_once(merged, cells, tol: float = 1e-6):
    assert len(merged) == len(cells)
    truth = np.array([c[0] for c in cells], float)
    ov = overlaps(truth, merged.boxes, "iou")
    match = ov.argmax(axis=1)
    assert sorted(match.tolist()) == list(range(len(cells)))  # one to one
    np.testing.assert_allclose(merged.boxes[match], truth, atol=tol)  # whole boxes
    assert [merged.labels[m] for m in match] == [c[1] for c in cells]


@pytest.mark.parametrize("diameter", [20, 48, 64])
def test_cells_on_every_seam_are_counted_once(diameter):
    px, py = _seam_positions(GRID)
    # cells along each vertical seam position (one per row, spaced apart) and each horizontal
    cells = [_cell(x, 40 + 80 * (i % 8), diameter) for i, x in enumerate(px)]
    merged = merge_tiles(GRID, _detect(GRID, cells))
    _assert_each_once(merged, cells)
    cells = [_cell(60 + 90 * (i % 10), y, diameter) for i, y in enumerate(py)]
    merged = merge_tiles(GRID, _detect(GRID, cells))
    _assert_each_once(merged, cells)


def test_cells_at_corners_of_four_tiles_are_counted_once():
    px, py = _seam_positions(GRID)
    corners = list(itertools.product(px[1::3], py[1::3]))  # the seams' exact positions
    assert corners
    for x, y in corners:  # one cell at a time: corners lie too close to place them all
        cells = [_cell(x, y, 50)]
        merged = merge_tiles(GRID, _detect(GRID, cells))
        _assert_each_once(merged, cells)


def test_jittered_copies_of_a_cell_on_a_cut_are_kept_once():
    left, right = GRID.tiles()[0], GRID.tiles()[1]
    cut = left.core[2]  # the cut between the first two tiles' cores
    cell = np.array([cut - 20, 50, cut + 20, 90], float)  # whole in both tiles
    empty = Detections(np.zeros((0, 4)), np.zeros(0, object), np.zeros(0))
    per_tile = [empty] * len(GRID)
    # each tile's box is off by a pixel, pushing its centre into the other tile's core
    per_tile[left.index] = Detections([cell + [1, 0, 1, 0]], np.array(["rbc"], object), [0.9])
    per_tile[right.index] = Detections([cell - [1, 0, 1, 0]], np.array(["rbc"], object), [0.8])
    assert len(merge_tiles(GRID, per_tile, slack=0)) == 0  # the bare centre rule loses it
    merged = merge_tiles(GRID, per_tile)  # the slack keeps both, the overlap merges them
    assert len(merged) == 1 and merged.scores[0] == 0.9


def test_many_random_cells_with_jitter():
    rng = np.random.default_rng(5)
    cells, taken = [], []
    while len(cells) < 120:  # non-overlapping cells, 10-60 px, two classes
        d = float(rng.uniform(10, 60))
        cx, cy = rng.uniform(d, [GRID.width - d, GRID.height - d])
        if any(abs(cx - x) < (d + e) / 2 + 2 and abs(cy - y) < (d + e) / 2 + 2
               for x, y, e in taken):
            continue
        taken.append((cx, cy, d))
        cells.append(_cell(cx, cy, d, "platelet" if d < 20 else "red blood cell"))
    merged = merge_tiles(GRID, _detect(GRID, cells, jitter=0.3))
    assert len(merged) == len(cells)
    _assert_each_once(merged, cells, tol=0.31)


def test_duplicates_merge_within_a_class_only():
    boxes = np.array([[0, 0, 20, 20], [1, 1, 21, 21], [0, 0, 20, 20], [100, 100, 120, 120]],
                     float)
    labels = np.array(["red blood cell", "red blood cell", "platelet", "red blood cell"])
    scores = np.array([0.6, 0.9, 0.8, 0.7])
    groups = dedupe(boxes, labels, scores)
    assert groups == [[1, 0], [2], [3]]  # the best score leads its group
    assert len(dedupe(boxes, labels, scores, class_aware=False)) == 2
    # touching cells (IoU 0.25) stay apart
    touching = np.array([[0, 0, 20, 20], [10, 0, 30, 20]], float)
    assert len(dedupe(touching, np.array([0, 0]), np.array([0.9, 0.8]))) == 2


def test_ownership_off_falls_back_to_overlap_merging():
    cells = [_cell(x, 300, 40) for x in (100, 230, 400, 600)]
    merged = merge_tiles(GRID, _detect(GRID, cells, min_visible=0.0), ownership=False)
    _assert_each_once(merged, cells)  # fragments merge into whole boxes by IoM


def test_cell_larger_than_the_overlap_is_pieced_together():
    xs = GRID.xs
    seam = (xs[1] + xs[0] + GRID.tile) / 2  # middle of the first overlap
    cells = [_cell(seam, 300, 100)]  # 100 px > 64 px overlap: no tile holds it whole
    merged = merge_tiles(GRID, _detect(GRID, cells))
    assert len(merged) == 1 and merged.cut[0]
    np.testing.assert_allclose(merged.boxes[0], cells[0][0])
    assert len(merged.members[0]) == 2


def test_empty_input_and_index_bookkeeping():
    empty = [Detections(np.zeros((0, 4)), np.zeros(0, int), np.zeros(0)) for _ in GRID]
    merged = merge_tiles(GRID, empty)
    assert len(merged) == 0 and merged.boxes.shape == (0, 4)
    cells = [_cell(500, 380, 30), _cell(120, 100, 30)]
    per_tile = _detect(GRID, cells)
    merged = merge_tiles(GRID, per_tile)
    flat = np.concatenate([d.boxes for d in per_tile])
    np.testing.assert_array_equal(flat[merged.index], merged.boxes)
    with pytest.raises(ValueError, match="detection lists"):
        merge_tiles(GRID, per_tile[:-1])
    with pytest.raises(ValueError, match="3 boxes"):
        Detections(np.zeros((3, 4)), np.zeros(2), np.zeros(3))


def test_dedupe_matches_the_all_pairs_greedy_grouping():
    """Comparing neighbours only gives the groups of the quadratic all-pairs greedy."""
    rng = np.random.default_rng(3)
    n = 800
    centres = rng.uniform(-100, 600, (n, 2))
    sides = rng.uniform(8, 70, (n, 1))
    boxes = np.concatenate([centres - sides / 2, centres + sides / 2], 1)
    scores, labels = rng.uniform(0, 1, n), rng.integers(0, 2, n)
    cut = rng.uniform(0, 1, n) < 0.2
    order = sorted(range(n), key=lambda i: (bool(cut[i]), -scores[i], i))
    ov = np.where(cut[:, None] | cut[None, :], overlaps(boxes, boxes, "iom"),
                  overlaps(boxes, boxes, "iou"))
    taken, expected = np.zeros(n, bool), []
    for i in order:
        if taken[i]:
            continue
        group = [i]
        taken[i] = True
        for j in order:
            if not taken[j] and ov[i, j] >= 0.5 and labels[i] == labels[j]:
                group.append(j)
                taken[j] = True
        expected.append(group)
    assert dedupe(boxes, labels, scores, cut) == expected


def test_string_labels_beside_empty_tiles():
    per_tile = [Detections(np.zeros((0, 4)), [], []) for _ in GRID]
    per_tile[0] = Detections([[10, 10, 40, 40]], ["platelet"], [0.9])
    merged = merge_tiles(GRID, per_tile)
    assert merged.labels.tolist() == ["platelet"]
