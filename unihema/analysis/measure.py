"""Per-cell measurements from instance masks: area, equivalent diameter, perimeter,
circularity and the nucleus:cytoplasm ratio.

Masks are boolean ``[H, W]`` arrays (a cell's pixels, in any frame: a crop of the field or the
whole field), or an instance label image ``int [H, W]`` with ``0`` for background and one id
per cell (:func:`measure_instances`). Lengths are in pixels and, given the image's scale
``um_per_px``, in micrometres; areas in px^2 and um^2.

* area ``A``: the count of the mask's pixels;
* equivalent diameter: the diameter of the disc of the same area, ``sqrt(4 A / pi)``;
* perimeter ``P``: the Cauchy-Crofton estimate from the boundary crossings along four
  directions (0, 45, 90, 135 degrees), ``P = pi/8 (n0 + n90 + (n45 + n135) / sqrt(2))``
  where ``n`` counts the pixel pairs across the mask's edge along each direction. It is
  within a few percent of the true length for smooth outlines (a disc of radius 20 px:
  within 2 %), where counting boundary pixels overestimates a circle by up to 27 %;
* circularity ``4 pi A / P^2``: 1 for a disc, lower for elongated or ragged outlines (clipped
  to 1, which small discretised discs may exceed);
* nucleus:cytoplasm ratio: nucleus area / cytoplasm area, the cytoplasm being the cell's
  pixels outside the nucleus (``inf`` when the nucleus fills the cell), and the nucleus
  fraction, nucleus area / cell area (the "N:C 0.8" of a blast in some texts); both ``None``
  without a nucleus mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Dict, Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class Measurements:
    """Measurements of one cell (see the module docstring); ``*_um`` are ``None`` without a
    scale, ``nc_ratio``/``nucleus_fraction`` without a nucleus."""

    area_px: float
    eq_diameter_px: float
    perimeter_px: float
    circularity: float
    area_um2: Optional[float] = None
    eq_diameter_um: Optional[float] = None
    perimeter_um: Optional[float] = None
    nc_ratio: Optional[float] = None
    nucleus_fraction: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        # flat floats: a field-by-field copy, ~10x faster than asdict's deep copy (a scan
        # writes one per cell)
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: the measurement names, in the order of the CSV columns
FIELDS = ("area_px", "area_um2", "eq_diameter_px", "eq_diameter_um", "perimeter_px",
          "perimeter_um", "circularity", "nc_ratio", "nucleus_fraction")


def perimeter(mask: np.ndarray) -> float:
    """Cauchy-Crofton perimeter (px) of a boolean mask ``[H, W]`` (0 for an empty mask)."""
    m = np.pad(np.asarray(mask, bool), 1)
    n0 = np.count_nonzero(m[:, 1:] != m[:, :-1])
    n90 = np.count_nonzero(m[1:, :] != m[:-1, :])
    n45 = np.count_nonzero(m[1:, 1:] != m[:-1, :-1])
    n135 = np.count_nonzero(m[1:, :-1] != m[:-1, 1:])
    return math.pi / 8.0 * (n0 + n90 + (n45 + n135) / math.sqrt(2.0))


def measure_cell(mask: np.ndarray, um_per_px: Optional[float] = None,
                 nucleus: Optional[np.ndarray] = None) -> Measurements:
    """Measurements of the cell ``mask`` (bool ``[H, W]``); ``nucleus`` (bool, same shape)
    is intersected with the cell. Raises ``ValueError`` for an empty mask or mismatched
    shapes."""
    m = np.asarray(mask, bool)
    if m.ndim != 2:
        raise ValueError(f"measure_cell: expected a mask [H, W], got shape {m.shape}")
    area = float(np.count_nonzero(m))
    if area == 0:
        raise ValueError("measure_cell: empty mask")
    diameter = math.sqrt(4.0 * area / math.pi)
    per = perimeter(m)
    circ = min(1.0, 4.0 * math.pi * area / per ** 2) if per > 0 else 0.0
    nc = frac = None
    if nucleus is not None:
        nuc = np.asarray(nucleus, bool)
        if nuc.shape != m.shape:
            raise ValueError(f"measure_cell: nucleus mask {nuc.shape} differs from the cell "
                             f"mask {m.shape}")
        n_area = float(np.count_nonzero(nuc & m))
        cyto = area - n_area
        frac = n_area / area
        nc = n_area / cyto if cyto > 0 else math.inf
    s = um_per_px
    return Measurements(
        area_px=area, eq_diameter_px=diameter, perimeter_px=per, circularity=circ,
        area_um2=None if s is None else area * s * s,
        eq_diameter_um=None if s is None else diameter * s,
        perimeter_um=None if s is None else per * s,
        nc_ratio=nc, nucleus_fraction=frac)


def measure_instances(labels: np.ndarray, um_per_px: Optional[float] = None,
                      nucleus: Optional[np.ndarray] = None,
                      ids: Optional[Sequence[int]] = None) -> Dict[int, Measurements]:
    """Measurements of every instance of a label image ``int [H, W]`` (0: background), keyed
    by instance id (``ids`` to restrict them); ``nucleus`` is a bool ``[H, W]`` mask of
    nucleus pixels (e.g. the nucleus class of a semantic mask), or ``None``. Each instance is
    measured within its bounding box, so the cost follows the cells, not the field."""
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"measure_instances: expected labels [H, W], got shape {lab.shape}")
    if nucleus is not None and np.asarray(nucleus).shape != lab.shape:
        raise ValueError(f"measure_instances: nucleus mask {np.asarray(nucleus).shape} "
                         f"differs from the labels {lab.shape}")
    ys, xs = np.nonzero(lab)
    values = lab[ys, xs]
    order = np.argsort(values, kind="stable")
    ys, xs, values = ys[order], xs[order], values[order]
    present, starts = np.unique(values, return_index=True)
    ends = list(starts[1:]) + [len(values)]
    wanted = None if ids is None else {int(i) for i in ids}
    out: Dict[int, Measurements] = {}
    for i, a, b in zip(present, starts, ends):  # one pass over the cells' own pixels
        if wanted is not None and int(i) not in wanted:
            continue
        cy, cx = ys[a:b], xs[a:b]
        y0, x0 = int(cy.min()), int(cx.min())
        crop = np.zeros((int(cy.max()) + 1 - y0, int(cx.max()) + 1 - x0), bool)
        crop[cy - y0, cx - x0] = True
        nuc = None if nucleus is None else \
            np.asarray(nucleus, bool)[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]]
        out[int(i)] = measure_cell(crop, um_per_px, nuc)
    return out
