"""Estimating an image's scale (micrometres per pixel) from the size of its red cells.

A normal red cell is about 7.5 um across (:data:`RED_CELL_UM`; healthy adults 6.5-8.5 um).
The median equivalent diameter of the red cells found in a first pass, in pixels, gives
``um_per_px = RED_CELL_UM / median_diameter_px``. The median resists the outliers of a smear
(fragments, macrocytes, two touching cells boxed as one); it does not correct a smear whose
red cells are all small or large (microcytic or macrocytic anaemia shift the estimate by the
same factor as the mean cell diameter), so the estimate is a fallback for an image whose
scale the user does not give, and is reported with its uncertainty.

Equivalent diameter ``d = sqrt(4 A / pi)``: from a mask's area ``A`` (px^2), or from a box
``w x h`` taken as the ellipse inscribed in it (``A = pi w h / 4``, so ``d = sqrt(w h)``).

Uncertainty: a 95 % percentile bootstrap interval of the median (``n_boot`` resamples with a
fixed seed, so the same cells give the same interval), mapped to um/px. Plausibility: the
estimate must fall within :data:`PLAUSIBLE_UM_PER_PX` (a x10 objective on a phone camera to
a x100 oil objective on a scanner sit inside it) and rest on at least ``min_cells`` red cells;
otherwise :attr:`ScaleEstimate.plausible` is false and ``reason`` says why (an image that is
not a smear, or one without enough red cells to size).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

#: diameter of a normal red cell, micrometres
RED_CELL_UM = 7.5
#: the scales (um/px) of plausible microscope images of a smear
PLAUSIBLE_UM_PER_PX: Tuple[float, float] = (0.05, 1.0)
#: the fewest red cells an estimate may rest on
MIN_CELLS = 20
#: relative half-width of the interval above which the estimate is flagged as uncertain
MAX_RELATIVE_HALF_WIDTH = 0.25


@dataclass(frozen=True)
class ScaleEstimate:
    """A scale estimate: ``um_per_px`` with its 95 % interval ``low``..``high`` (um/px), the
    ``n_cells`` and ``median_diameter_px`` it rests on, ``plausible`` and the ``reason``
    when not (empty otherwise), ``source`` (``"red cells"`` or ``"given"``)."""

    um_per_px: Optional[float]
    low: Optional[float]
    high: Optional[float]
    n_cells: int
    median_diameter_px: Optional[float]
    plausible: bool
    reason: str = ""
    source: str = "red cells"

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def given(cls, um_per_px: float) -> "ScaleEstimate":
        """A scale the user gave (no interval); still checked for plausibility."""
        lo, hi = PLAUSIBLE_UM_PER_PX
        ok = lo <= um_per_px <= hi
        reason = "" if ok else (f"{um_per_px:g} um/px is outside the plausible "
                                f"{lo:g}-{hi:g} um/px of a smear image")
        return cls(float(um_per_px), None, None, 0, None, ok, reason, "given")


def diameters_from_boxes(boxes: np.ndarray) -> np.ndarray:
    """Equivalent diameters ``[N]`` (px) of boxes ``[N, 4]`` xyxy: ``sqrt(w h)``."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    w, h = np.clip(b[:, 2] - b[:, 0], 0, None), np.clip(b[:, 3] - b[:, 1], 0, None)
    return np.sqrt(w * h)


def diameters_from_areas(areas: Sequence[float]) -> np.ndarray:
    """Equivalent diameters ``[N]`` (px) of mask areas ``[N]`` (px^2): ``sqrt(4 A / pi)``."""
    return np.sqrt(4.0 * np.clip(np.asarray(areas, np.float64), 0, None) / np.pi)


def estimate_um_per_px(diameters_px: Sequence[float], red_cell_um: float = RED_CELL_UM,
                       min_cells: int = MIN_CELLS, n_boot: int = 1000, seed: int = 0,
                       plausible: Tuple[float, float] = PLAUSIBLE_UM_PER_PX) -> ScaleEstimate:
    """The scale of an image from the equivalent diameters (px) of its red cells.

    Non-finite and non-positive diameters are ignored. With no usable cell the estimate is
    ``None`` and implausible; with fewer than ``min_cells`` it is computed but flagged.
    """
    d = np.asarray(diameters_px, np.float64).reshape(-1)
    d = d[np.isfinite(d) & (d > 0)]
    n = int(d.size)
    if n == 0:
        return ScaleEstimate(None, None, None, 0, None, False,
                             "no red cells found to estimate the scale from")
    med = float(np.median(d))
    rng = np.random.default_rng(seed)
    boot = np.median(d[rng.integers(0, n, size=(n_boot, n))], axis=1)
    d_lo, d_hi = np.percentile(boot, [2.5, 97.5])
    est = red_cell_um / med
    low, high = red_cell_um / float(d_hi), red_cell_um / float(d_lo)
    reasons = []
    lo, hi = plausible
    if not lo <= est <= hi:
        reasons.append(f"estimated {est:.3g} um/px is outside the plausible {lo:g}-{hi:g} "
                       f"um/px of a smear image (median red cell {med:.1f} px)")
    if n < min_cells:
        reasons.append(f"only {n} red cells (at least {min_cells} needed for a scale)")
    half = (high - low) / 2 / est
    if n >= min_cells and half > MAX_RELATIVE_HALF_WIDTH:
        reasons.append(f"red cell sizes too spread for a scale (95 % interval "
                       f"{low:.3g}-{high:.3g} um/px)")
    return ScaleEstimate(est, low, high, n, med, not reasons, "; ".join(reasons))
