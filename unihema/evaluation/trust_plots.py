"""Plots of the open-set and selective-prediction evaluators (:mod:`unihema.evaluation.trust`),
registered in :data:`unihema.evaluation.plots.PLOTS`:

* ``roc`` -- :func:`plot_roc`: share of unknown cells flagged (true-positive rate) against
  share of known cells flagged (false-positive rate), one line per unknown-cell score, its
  AUROC in the legend, and the 95 % true-positive rate the FPR@95 reads at;
* ``coverage_target`` -- :func:`plot_coverage_target`: the share of cells decided alone
  against the accuracy asked of them (an oracle threshold on the scored items), with the
  trust state's own threshold (fitted elsewhere) as a point at its target, labelled with
  the accuracy it reached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
from matplotlib.figure import Figure

from unihema.evaluation.plots import PLOTS, PlotKind, save_png


def plot_roc(curves: Mapping[str, Mapping[str, np.ndarray]], path: Path, *, title: str,
             auroc: Optional[Mapping[str, float]] = None) -> Path:
    """ROC curves (``score -> {"fpr", "tpr"}``, :func:`unihema.trust.metrics.roc_curve`)."""
    fig = Figure(figsize=(5.6, 5.0))
    ax = fig.add_subplot()
    for name, c in curves.items():
        a = (auroc or {}).get(name)
        ax.plot(c["fpr"], c["tpr"], lw=1.8,
                label=name + ("" if a is None else f" (AUROC {a:.3f})"))
    ax.plot([0, 1], [0, 1], ls="--", color="0.5", lw=1, label="chance")
    ax.axhline(0.95, ls=":", color="0.4", lw=1, label="95 % of unknown cells flagged")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="known cells flagged (false-positive rate)",
           ylabel="unknown cells flagged (true-positive rate)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return save_png(fig, path)


def plot_coverage_target(data: Mapping[str, Any], path: Path, *, title: str) -> Path:
    """Coverage against target accuracy (``SelectiveEvaluator.coverage_target``)."""
    targets = np.asarray(data["targets"], np.float64)
    coverage = np.asarray(data["coverage"], np.float64)
    fig = Figure(figsize=(6.0, 4.5))
    ax = fig.add_subplot()
    ax.plot(100 * targets, 100 * coverage, marker="o", lw=1.8, color="#4c78a8",
            label="best threshold on these items (oracle)")
    state = data.get("state")
    if state:
        acc = state.get("accuracy")
        acc_txt = "no cell decided" if acc is None or acc != acc else f"accuracy {100 * acc:.1f} %"
        ax.plot([100 * state["target"]], [100 * state["coverage"]], "s", ms=8,
                color="#e45756", label=f"trust state's threshold: {acc_txt}")
    for t, c in zip(targets, coverage):
        ax.annotate(f"{100 * c:.0f} %", (100 * t, 100 * c), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize=8)
    ax.set(ylim=(0, 105), xlabel="target accuracy on the cells decided alone (%)",
           ylabel="coverage: cells decided alone (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return save_png(fig, path)


def _draw_roc(evaluator, metrics, path, title) -> Optional[Path]:
    if not getattr(evaluator, "roc", None):
        return None
    auroc = {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith("auroc/")}
    return plot_roc(evaluator.roc, path, title=f"{title}\nknown vs unseen types", auroc=auroc)


def _draw_coverage_target(evaluator, metrics, path, title) -> Optional[Path]:
    if not getattr(evaluator, "coverage_target", None):
        return None
    return plot_coverage_target(evaluator.coverage_target, path,
                                title=f"{title}\ncoverage at a target accuracy")


PLOTS.register("roc", PlotKind("roc", _draw_roc))
PLOTS.register("coverage_target", PlotKind("coverage_target", _draw_coverage_target))

__all__ = ["plot_coverage_target", "plot_roc"]
