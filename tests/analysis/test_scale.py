"""Scale from red-cell size: the estimate, its interval, and the plausibility flags."""

from __future__ import annotations

import numpy as np
import pytest

from unihema.analysis.scale import (RED_CELL_UM, ScaleEstimate, diameters_from_areas,
                                    diameters_from_boxes, estimate_um_per_px)


def test_equivalent_diameters():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 13, 17]], float)
    np.testing.assert_allclose(diameters_from_boxes(boxes), [10.0, np.sqrt(96.0)])
    np.testing.assert_allclose(diameters_from_areas([np.pi * 25, 0]), [10.0, 0.0])


def test_estimate_recovers_the_scale_with_an_interval():
    rng = np.random.default_rng(0)
    true = 0.25  # um/px: a 7.5 um cell is 30 px
    d = rng.normal(RED_CELL_UM / true, 2.0, 300)
    d[:30] = rng.uniform(8, 14, 30)  # 10 % fragments and platelets taken for red cells
    est = estimate_um_per_px(d)
    assert est.plausible and est.reason == ""
    assert est.um_per_px == pytest.approx(true, rel=0.05)
    assert est.low < est.um_per_px < est.high
    assert (est.high - est.low) / est.um_per_px < 0.1
    assert est.n_cells == 300 and est.source == "red cells"
    assert estimate_um_per_px(d) == est  # a fixed seed: the same cells, the same interval


def test_implausible_and_thin_estimates_are_flagged():
    few = estimate_um_per_px([30.0] * 5)
    assert not few.plausible and "only 5 red cells" in few.reason
    assert few.um_per_px == pytest.approx(0.25)
    huge = estimate_um_per_px(np.full(50, 2000.0))  # 0.00375 um/px
    assert not huge.plausible and "outside the plausible" in huge.reason
    tiny = estimate_um_per_px(np.full(50, 3.0))  # 2.5 um/px
    assert not tiny.plausible and "outside the plausible" in tiny.reason
    spread = estimate_um_per_px(np.random.default_rng(1).uniform(5, 60, 25))
    assert not spread.plausible and "too spread" in spread.reason
    none = estimate_um_per_px([np.nan, 0.0, -3.0])
    assert none.um_per_px is None and not none.plausible and none.n_cells == 0


def test_a_given_scale_is_checked_too():
    assert ScaleEstimate.given(0.1).plausible
    bad = ScaleEstimate.given(5.0)
    assert not bad.plausible and "5 um/px" in bad.reason and bad.source == "given"
    assert bad.to_dict()["um_per_px"] == 5.0
