"""unihema.analysis.truth: matching found cells to truth, seam cells of a grid, smear scores."""

from __future__ import annotations

import numpy as np

from unihema.analysis.run import analyze
from unihema.analysis.tiles import TileGrid
from unihema.analysis.truth import assign, hits, once_missed_doubled, score_smear, seam_cells

from tests.analysis.conftest import FIELD_UM_PER_PX, truth_detector


def test_each_found_cell_goes_to_its_best_truth_cell():
    truth = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]], float)
    found = np.array([[1, 0, 10, 10],      # truth 0
                      [0, 1, 10, 11],      # truth 0 again: doubled
                      [21, 0, 31, 10],     # truth 1
                      [60, 0, 70, 10]], float)  # nothing: extra
    assert assign(found, truth).tolist() == [0, 0, 1, -1]
    n = hits(found, truth)
    assert n.tolist() == [2, 1, 0]
    assert once_missed_doubled(n) == {"cells": 3, "found_once": 1, "missed": 1, "doubled": 1}
    # lineage by lineage: a box on a red cell that calls it a parasite matches nothing
    labels = ["red blood cell"] * 3
    assert assign(found, truth, found_labels=["red blood cell", "malaria parasite",
                                              "red blood cell", "red blood cell"],
                  truth_labels=labels).tolist() == [0, -1, 1, -1]
    # a tight box of a small cell: IoU 0.25 but each box holds the other's centre
    assert assign(np.array([[5, 5, 15, 15]], float), np.array([[0, 0, 20, 20]], float)
                  ).tolist() == [0]
    assert assign(np.array([[0, 0, 9, 9]], float), np.array([[0, 0, 20, 20]], float)
                  ).tolist() == [-1]  # the truth centre (10, 10) lies outside
    assert assign(np.zeros((0, 4)), truth).shape == (0,)
    assert assign(found, np.zeros((0, 4))).tolist() == [-1] * 4


def test_seam_cells_cross_a_core_cut_or_an_inner_tile_edge():
    grid = TileGrid(300, 100, 160, 20)  # tiles at x 0 and 140: edges 140 and 160, cut 150
    boxes = np.array([[10, 10, 30, 30],     # inside the first tile only
                      [145, 10, 155, 20],   # on the cut
                      [130, 10, 145, 20],   # across the second tile's left edge
                      [155, 10, 165, 20],   # across the first tile's right edge
                      [200, 10, 220, 30]], float)
    assert seam_cells(boxes, grid).tolist() == [False, True, True, True, False]


def test_an_analysis_with_the_truth_boxes_scores_exactly(tiny_pipe, small_field):
    a = analyze(tiny_pipe, [small_field.image], um_per_px=FIELD_UM_PER_PX, progress=False,
                detections=truth_detector(small_field))
    s = score_smear(a, {"field-1": small_field.cells})
    want = small_field.summary()
    for lineage, row in s["lineages"].items():
        assert row["truth"] == want["lineages"][lineage]
        if lineage != "malaria parasite":  # tiny model: the lineage follows the typing
            assert row["found"] == row["truth"], (lineage, row)
            assert row["missed"] == row["doubled"] == row["extra"] == 0
    assert s["differential"]["truth_white_cells"] == want["white_cells"]
    assert 0.0 <= s["differential"]["l1_half"] <= 100.0
    assert s["parasitaemia"]["truth"] == want["parasitaemia"]
