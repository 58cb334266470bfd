"""fit_state / evaluate_state on cells with a known answer (no model needed)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from unihema.trust.fitting import Cells, evaluate_state, fit_state, fit_temperature

CLASSES = ["a", "b", "c"]


def _cells(n_per: int, seed: int, novel: int = 0, scale: float = 12.0) -> Cells:
    """Cells around three known directions (plus ``novel`` of a fourth type, 'd')."""
    g = torch.Generator().manual_seed(0)
    centres = F.normalize(torch.randn(4, 16, generator=g), dim=-1)
    g.manual_seed(seed)
    idx = torch.cat([torch.arange(3).repeat(n_per), torch.full((novel,), 3)])
    emb = F.normalize(centres[idx] + 0.35 * torch.randn(len(idx), 16, generator=g), dim=-1)
    logits = scale * emb @ centres[:3].t()
    return Cells(logits, emb, [("a", "b", "c", "d")[int(i)] for i in idx], list(CLASSES),
                 f"seed{seed}")


def _names(ns):
    g = torch.Generator().manual_seed(0)
    centres = F.normalize(torch.randn(4, 16, generator=g), dim=-1)
    table = {"a": centres[0], "b": centres[1], "c": centres[2], "other": centres[3]}
    return torch.stack([table.get(n, centres.mean(0)) for n in ns])


def test_temperature_undoes_a_known_sharpening():
    g = torch.Generator().manual_seed(1)
    true = 2.0 * torch.randn(4000, 5, generator=g)
    labels = torch.multinomial(true.softmax(-1), 1, generator=g).squeeze(1)
    assert fit_temperature(3.0 * true, labels) == pytest.approx(3.0, rel=0.1)
    assert fit_temperature(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long)) == 1.0


def test_fitted_state_meets_its_targets_on_like_cells():
    val, train, test = _cells(300, 1), _cells(300, 2), _cells(400, 3, novel=300)
    state = fit_state(val, train, method="mahalanobis", embed_names=_names, logit_scale=12.0,
                      params={"names": {"other": ["other"]}}, fitted_on={"split": "val"})
    assert set(state.scorers) == {"msp", "energy", "mahalanobis", "knn", "names"}
    assert state.unknown_threshold == state.thresholds["mahalanobis"]
    assert state.fitted_on["val_cells"] == 900 and state.fitted_on["split"] == "val"
    assert 0.0 < state.referral_threshold <= 1.0
    r = evaluate_state(state, test)
    assert r["known"] == 1200 and r["unknown"] == 300
    assert r["calibration"]["ece"] < 0.05
    assert r["calibration"]["nll"] <= r["uncalibrated"]["nll"] + 1e-6
    for lv, m in r["conformal"].items():
        assert m["coverage"] >= float(lv) - 0.03, (lv, m)
    assert r["conformal"]["0.95"]["mean_size"] >= r["conformal"]["0.90"]["mean_size"]
    for m in ("mahalanobis", "knn", "names"):
        assert r["open_set"][m]["auroc"] > 0.9, (m, r["open_set"][m])
        assert r["open_set"][m]["flagged_known"] == pytest.approx(0.05, abs=0.03)
        assert list(r["open_set"][m]["per_type"]) == ["d"]
    assert r["referral"]["accuracy"] >= 0.96 and r["referral"]["coverage"] > 0.3
    assert r["referral_all"]["n"] == 1500


def test_fit_needs_known_cells_and_matching_classes():
    val = _cells(5, 1)
    with pytest.raises(ValueError, match="no cell of the trained types"):
        fit_state(val.select(torch.zeros(len(val), dtype=torch.bool)))
    state = fit_state(_cells(40, 1), methods=["msp"], method="msp")
    assert set(state.scorers) == {"msp"}
    other = _cells(5, 2)
    other.classes = ["x", "y", "z"]
    with pytest.raises(ValueError, match="state's classes"):
        evaluate_state(state, other)
