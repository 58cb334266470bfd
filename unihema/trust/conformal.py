"""Split-conformal prediction sets over cell types: adaptive prediction sets (APS).

Non-randomised APS (Romano et al., 2020, without the random tie-break): a cell's set holds its
types in decreasing calibrated probability while their summed probability stays within a
threshold ``qhat``; the most probable type is always in it, so a set is never empty. Fitted on a
calibration split of ``n`` labelled cells, the conformity score of a cell is the summed
probability of the types ranked at or above its true type, and ``qhat`` is the
``ceil((n + 1) * level) / n`` empirical quantile of those scores; a set holds every type whose
own score (the mass ranked at or above it) is within ``qhat``. For a new cell exchangeable
with the calibration cells (the same kind of data), the set then holds the true type with
probability at least ``level``. Without the random tie-break the sets are deterministic (the
same cell always gets the same set, which a report needs) and cover a little more than
``level``, at the cost of slightly larger sets.

Shapes: ``probs [N, C]`` rows summing to 1 over the state's classes, ``labels [N]`` int indices.
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence

import torch

#: the levels fitted by default, as the keys of ``TrustState.conformal``
LEVELS = ("0.90", "0.95")


def aps_scores(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``[N]`` conformity scores: the summed probability of the types ranked at or above each
    cell's true type (1.0 when it is ranked last)."""
    order = probs.argsort(dim=1, descending=True)
    sorted_p = probs.gather(1, order)
    cum = sorted_p.cumsum(1)
    rank = (order == labels[:, None]).float().argmax(1)
    return cum.gather(1, rank[:, None]).squeeze(1).clamp(max=1.0)


def fit_aps(probs: torch.Tensor, labels: torch.Tensor, level: float) -> float:
    """The APS threshold ``qhat`` at coverage ``level`` (e.g. 0.9) from calibration cells.

    Raises:
        ValueError: no calibration cell, or ``level`` outside (0, 1).
    """
    n = int(labels.numel())
    if n == 0:
        raise ValueError("conformal calibration needs at least one labelled cell")
    if not 0.0 < level < 1.0:
        raise ValueError(f"conformal level must lie in (0, 1), got {level}")
    scores = aps_scores(probs.float(), labels.long()).sort().values
    k = math.ceil((n + 1) * level)
    if k > n:  # too few cells for this level: every type goes in the set
        return 1.0
    return float(scores[k - 1])


def aps_sets(probs: torch.Tensor, qhat: float) -> List[List[int]]:
    """Per cell, the class indices of its APS set at threshold ``qhat``, most probable first:
    the top types while their summed probability stays within ``qhat`` (at least one)."""
    order = probs.argsort(dim=1, descending=True)
    cum = probs.gather(1, order).cumsum(1)
    # a type is in when the mass at or above it is within qhat (its conformity score would be
    # accepted); the most probable type always is
    sizes = (cum <= qhat + 1e-6).sum(1).clamp(min=1)
    return [order[i, : int(sizes[i])].tolist() for i in range(probs.shape[0])]


def set_metrics(sets: Sequence[Sequence[int]], labels: Sequence[int]) -> Dict[str, float]:
    """``coverage`` (share of cells whose set holds the true type), ``mean_size``,
    ``singleton`` (share of sets with one type) and ``n`` over labelled cells."""
    n = len(labels)
    if n == 0:
        return {"coverage": float("nan"), "mean_size": float("nan"),
                "singleton": float("nan"), "n": 0}
    covered = sum(int(y in s) for s, y in zip(sets, labels))
    sizes = [len(s) for s in sets]
    return {"coverage": covered / n, "mean_size": sum(sizes) / n,
            "singleton": sum(int(k == 1) for k in sizes) / n, "n": n}


__all__ = ["LEVELS", "aps_scores", "aps_sets", "fit_aps", "set_metrics"]
