"""APS with a fixed share u of the own mass: coverage on exchangeable cells, set shapes."""

from __future__ import annotations

import pytest
import torch

from unihema.trust.conformal import aps_scores, aps_sets, fit_aps, set_metrics


def _cells(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    logits = 2.0 * torch.randn(n, 5, generator=g)
    probs = logits.softmax(-1)
    labels = torch.multinomial(probs, 1, generator=g).squeeze(1)  # calibrated by construction
    return probs, labels


def test_scores_are_the_mass_above_plus_a_share_of_the_own():
    probs = torch.tensor([[0.6, 0.3, 0.1], [0.6, 0.3, 0.1]])
    labels = torch.tensor([0, 2])
    assert torch.allclose(aps_scores(probs, labels, 1.0), torch.tensor([0.6, 1.0]))
    assert torch.allclose(aps_scores(probs, labels, 0.5), torch.tensor([0.3, 0.95]))
    assert torch.allclose(aps_scores(probs, labels, 0.0), torch.tensor([0.0, 0.9]))


@pytest.mark.parametrize("u", [0.0, 0.5, 1.0])
def test_coverage_holds_on_new_cells_like_the_calibration_cells(u):
    cal_p, cal_y = _cells(2000, 0)
    test_p, test_y = _cells(4000, 1)
    for level in (0.9, 0.95):
        qhat = fit_aps(cal_p, cal_y, level, u)
        m = set_metrics(aps_sets(test_p, qhat, u), test_y.tolist())
        assert level - 0.02 <= m["coverage"] <= level + 0.04, (u, level, m)
        assert 1.0 <= m["mean_size"] < 5.0
    assert fit_aps(cal_p, cal_y, 0.95, u) >= fit_aps(cal_p, cal_y, 0.9, u)


def test_sets_are_ordered_prefixes_and_never_empty():
    probs = torch.tensor([[0.2, 0.7, 0.1], [0.34, 0.33, 0.33]])
    assert aps_sets(probs, 0.0, 1.0) == [[1], [0]]
    assert aps_sets(probs, 0.85, 1.0) == [[1], [0, 1]]
    assert aps_sets(probs, 0.9, 1.0) == [[1, 0], [0, 1]]
    assert aps_sets(probs, 1.0, 1.0) == [[1, 0, 2], [0, 1, 2]]
    # half the own mass: the second type joins once 0.7 + 0.1 is within the threshold
    assert aps_sets(probs, 0.79, 0.5) == [[1], [0, 1]]
    assert aps_sets(probs, 0.8, 0.5) == [[1, 0], [0, 1]]


def test_too_few_cells_for_the_level_put_every_type_in():
    probs, labels = _cells(5, 2)
    assert fit_aps(probs, labels, 0.9) == 1.0
    assert set_metrics([[0, 1]], [3]) == {"coverage": 0.0, "mean_size": 2.0,
                                          "singleton": 0.0, "n": 1}
