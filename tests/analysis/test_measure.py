"""Cell measurements: area, equivalent diameter, perimeter, circularity, N:C ratio."""

from __future__ import annotations

import math

import numpy as np
import pytest

from unihema.analysis.measure import measure_cell, measure_instances, perimeter


def _disc(shape, cx, cy, r):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


def test_disc_measurements():
    m = measure_cell(_disc((60, 60), 30, 30, 20), um_per_px=0.25)
    assert m.area_px == pytest.approx(math.pi * 400, rel=0.01)
    assert m.eq_diameter_px == pytest.approx(40, rel=0.01)
    assert m.eq_diameter_um == pytest.approx(10, rel=0.01)
    assert m.area_um2 == pytest.approx(m.area_px / 16)
    assert m.perimeter_px == pytest.approx(2 * math.pi * 20, rel=0.02)
    assert m.perimeter_um == pytest.approx(m.perimeter_px * 0.25)
    assert m.circularity > 0.95
    assert m.nc_ratio is None and m.nucleus_fraction is None


def test_elongated_and_ragged_outlines_are_less_circular():
    bar = np.zeros((20, 100), bool)
    bar[5:15, 10:90] = True
    m = measure_cell(bar)
    assert m.area_px == 800 and m.area_um2 is None
    assert m.perimeter_px == pytest.approx(180, rel=0.06)
    assert m.circularity < 0.4
    star = _disc((60, 60), 30, 30, 20)
    star[::4, :] = False  # a comb of cuts through the disc
    assert measure_cell(star).circularity < 0.5
    assert perimeter(np.zeros((5, 5), bool)) == 0


def test_nucleus_to_cytoplasm_ratio():
    cell = _disc((60, 60), 30, 30, 20)
    nucleus = _disc((60, 60), 30, 30, 10)
    m = measure_cell(cell, nucleus=nucleus)
    assert m.nucleus_fraction == pytest.approx(0.25, rel=0.03)
    assert m.nc_ratio == pytest.approx(1 / 3, rel=0.04)
    outside = np.zeros_like(cell)
    outside[0:3, 0:3] = True  # nucleus pixels outside the cell do not count
    assert measure_cell(cell, nucleus=nucleus | outside).nc_ratio == m.nc_ratio
    assert measure_cell(cell, nucleus=cell).nc_ratio == math.inf


def test_bad_masks_are_refused():
    with pytest.raises(ValueError, match="empty mask"):
        measure_cell(np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="differs"):
        measure_cell(np.ones((4, 4), bool), nucleus=np.ones((5, 4), bool))
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        measure_cell(np.ones((2, 4, 4), bool))


def test_instances_of_a_label_image():
    labels = np.zeros((80, 120), np.int32)
    labels[_disc(labels.shape, 30, 30, 20)] = 3
    labels[_disc(labels.shape, 90, 50, 12)] = 7
    nucleus = _disc(labels.shape, 30, 30, 10)
    out = measure_instances(labels, um_per_px=0.5, nucleus=nucleus)
    assert sorted(out) == [3, 7]
    alone = measure_cell(labels == 3, 0.5, nucleus)
    assert out[3] == alone
    assert out[7].nucleus_fraction == 0.0
    assert list(measure_instances(labels, ids=[7])) == [7]
    assert measure_instances(np.zeros((5, 5), int)) == {}
