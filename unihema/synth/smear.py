"""Full-size camera fields with exact truth for every cell: :func:`make_field`.

A field is a :class:`~unihema.synth.layout.SmearLayout` painted at a chosen scale (100x oil
objectives give 0.1-0.25 um/px; a red cell is ~7.5 um across, so 30-75 px). The truth of each
cell is a JSON-ready record (:func:`cell_records`)::

    {"id": 12, "lineage": "red blood cell", "type": "target cell", "box": [x0, y0, x1, y1],
     "centre": [x, y], "attributes": {...}, "infected": false, "malaria parasite": null,
     "host": null, "area_px": 1630, "inside": 1.0, "visible": 0.96, "on_seam": false}

``box``: tight pixel edges around the cell's drawn footprint inside the image (occluded parts
included); ``area_px``: visible pixels (its pixels in ``instances``); ``inside``: share of the
footprint inside the image (< 1 for cells cut by the border); ``visible``: share of the in-image
footprint not covered by later cells. ``attributes``: the 11 morphology attributes of a white
cell, else ``{}``. Red cells carry ``infected`` and the id of their ``parasite``; parasites the
id of their ``host``. Scans add ``on_seam`` (the box crosses a seam line) and ``seam_placed``.

:func:`truth_summary` gives the per-smear answers an analyser should report, counting the cells
whose centre lies in the image (``inside >= 0.5``).
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from unihema.synth.layout import (HOSTS, LINEAGES, NATIVE_UM_PER_PX, SmearLayout, SmearSpec,
                                  plan_smear)
from unihema.synth.profiles import RED_MORPHOLOGIES, WHITE_TYPES
from unihema.synth.render import compose, observe

#: The 1x scale of :func:`make_field` (um/px): a red cell is ~62 px across.
DEFAULT_UM_PER_PX = 0.12


@dataclass
class FullField:
    """A rendered full-size field: ``image`` [H, W, 3] uint8 RGB, ``mask`` [H, W] uint8
    semantic values (:data:`unihema.synth.MASK_VALUES`), ``instances`` [H, W] int32 (cell id or
    0), ``cells`` the truth records (module docstring), sorted by id."""

    image: np.ndarray
    mask: np.ndarray
    instances: np.ndarray
    cells: List[Dict[str, Any]]
    um_per_px: float
    layout: SmearLayout

    def summary(self) -> Dict[str, Any]:
        return truth_summary(self.cells)


def cell_records(layout: SmearLayout, um_per_px: float,
                 feet: Dict[int, Tuple[List[int], int]], visible: np.ndarray,
                 totals: Dict[int, int]) -> List[Dict[str, Any]]:
    """Truth records of every cell with a footprint in the image.

    ``feet``: id -> (box, in-image footprint pixels); ``visible``: visible pixel count per id
    (index = id); ``totals``: id -> footprint pixels of the whole cell (image or not).
    """
    infected = layout.infected()
    out = []
    for c in layout.cells:
        if c.id not in feet:
            continue
        box, n_in = feet[c.id]
        vis = int(visible[c.id]) if c.id < len(visible) else 0
        rec: Dict[str, Any] = {
            "id": c.id, "lineage": c.lineage, "type": c.type, "box": [int(v) for v in box],
            "centre": [round(c.x / um_per_px, 2), round(c.y / um_per_px, 2)],
            "attributes": dict(c.attributes), "area_px": vis,
            "inside": round(n_in / max(1, totals.get(c.id, n_in)), 4),
            "visible": round(vis / max(1, n_in), 4)}
        if c.lineage == "red blood cell":
            rec["infected"] = c.id in infected
            rec["malaria parasite"] = infected.get(c.id)
        if c.lineage == "malaria parasite":
            rec["host"] = c.host
        out.append(rec)
    return out


def _footprint_totals(layout: SmearLayout, um_per_px: float, ids: Iterable[int]) -> Dict[int, int]:
    """Whole-cell footprint pixels (inside the image or not) of the cells ``ids``."""
    from unihema.synth.render import draw_native, scale_patch

    want = set(ids)
    s = NATIVE_UM_PER_PX / um_per_px
    return {c.id: int(scale_patch(draw_native(c), s).mask.sum())
            for c in layout.cells if c.id in want and c.lineage != "malaria parasite"}


def render_layout(layout: SmearLayout, um_per_px: float, noise_seed: int = 0) -> FullField:
    """Paint the whole layout as one field at ``um_per_px`` (size = extent / scale)."""
    if not 0.02 <= um_per_px <= 2.0:
        raise ValueError(f"um_per_px={um_per_px} (need 0.02..2.0; 100x objectives: 0.1-0.25)")
    H = int(round(layout.height_um / um_per_px))
    W = int(round(layout.width_um / um_per_px))
    if H * W > 200_000_000:
        raise ValueError(f"a {W}x{H} field does not fit in memory; write a scan instead "
                         "(unihema.synth.scan.write_scan)")
    painted = compose(layout, um_per_px, (0, 0, H, W), (H, W))
    rng = np.random.default_rng([layout.seed, int(noise_seed), int(round(1e4 * um_per_px))])
    image = observe(painted.canvas, layout, um_per_px, (0, 0), (H, W), rng)
    visible = np.bincount(painted.inst.ravel(), minlength=len(layout.cells) + 1)
    edge = [cid for cid, (b, _) in painted.feet.items()
            if b[0] == 0 or b[1] == 0 or b[2] == W or b[3] == H]
    totals = {cid: n for cid, (_, n) in painted.feet.items()}
    totals.update(_footprint_totals(layout, um_per_px, edge))
    cells = cell_records(layout, um_per_px, painted.feet, visible, totals)
    return FullField(image, painted.sem, painted.inst, cells, float(um_per_px), layout)


def make_field(width: int = 1920, height: int = 1440, um_per_px: float = DEFAULT_UM_PER_PX,
               seed: int = 0, spec: Optional[SmearSpec] = None) -> FullField:
    """Plan and render one ``width`` x ``height`` camera field at ``um_per_px``."""
    layout = plan_smear(width * um_per_px, height * um_per_px, seed, spec)
    return render_layout(layout, um_per_px)


def render_magnifications(layout: SmearLayout, um_per_px: float = DEFAULT_UM_PER_PX,
                          factors: Sequence[float] = (0.5, 1.0, 2.0)) -> Dict[float, FullField]:
    """The same field content at each magnification ``factor`` (``um_per_px / factor``): the
    same cells, ids and attributes, boxes scaled by ``factor`` (up to resampling)."""
    return {float(f): render_layout(layout, um_per_px / f) for f in factors}


# ----------------------------------------------------------------------------- truth summary
def _pct(n: int, d: int) -> float:
    return round(100.0 * n / d, 3) if d else 0.0


def truth_summary(cells: Sequence[Dict[str, Any]], fields: int = 1) -> Dict[str, Any]:
    """The per-smear answers of a truth list (cells with ``inside >= 0.5`` count).

    Returns ``counts`` per type and ``lineages``; ``differential`` (percent per white type,
    resting on ``white_cells``); ``red_morphology`` (percent of red cells per abnormal type);
    ``platelets_per_field`` and ``platelets_per_100_red``; ``parasitaemia`` (infected red cells
    per 100 red cells) and ``infected_red_cells``.
    """
    counted = [c for c in cells if c.get("inside", 1.0) >= 0.5]
    types = Counter(c["type"] for c in counted)
    lineages = Counter(c["lineage"] for c in counted)
    n_red, n_white = lineages["red blood cell"], lineages["white blood cell"]
    n_plt = lineages["platelet"]
    infected = sum(1 for c in counted if c.get("infected"))
    return {
        "counts": {t: types[t] for t in RED_MORPHOLOGIES + WHITE_TYPES + ("platelet", "ring form")
                   if types[t]},
        "lineages": {k: lineages[k] for k in LINEAGES},
        "white_cells": n_white,
        "differential": {t: _pct(types[t], n_white) for t in WHITE_TYPES if types[t]},
        "red_cells": n_red,
        "red_morphology": {t: _pct(types[t], n_red) for t in RED_MORPHOLOGIES[1:] if types[t]},
        "platelets_per_field": round(n_plt / max(1, fields), 3),
        "platelets_per_100_red": _pct(n_plt, n_red),
        "infected_red_cells": infected,
        "parasitaemia": _pct(infected, n_red),
        "infectable_types": list(HOSTS),
    }


# ----------------------------------------------------------------------------- files
def write_jsonl(path: Union[str, Path], records: Iterable[Dict[str, Any]]) -> int:
    """Write one JSON object a line (atomically); returns the number of lines."""
    from unihema.synth.writer import atomic_write

    lines = [json.dumps(r, separators=(",", ":")) for r in records]
    atomic_write(path, "".join(line + "\n" for line in lines).encode("utf-8"))
    return len(lines)


def write_field(out: Union[str, Path], ff: FullField, name: str = "field") -> Dict[str, Any]:
    """Write ``<name>.png`` (RGB), ``<name>_mask.png`` (uint8 semantic values),
    ``<name>_instances.png`` (16-bit cell ids), ``<name>_cells.jsonl`` (truth, one cell a line)
    and ``<name>.json`` (size, um_per_px, seed, spec, optics, truth summary) into ``out``."""
    from unihema.synth.field import MASK_VALUES
    from unihema.synth.writer import _png, atomic_write

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if ff.instances.max(initial=0) > 65535:
        raise ValueError(f"{len(ff.cells)} cells do not fit a 16-bit instance PNG; use a scan")
    atomic_write(out / f"{name}.png", _png(ff.image))
    atomic_write(out / f"{name}_mask.png", _png(ff.mask))
    raw = io.BytesIO()
    Image.fromarray(ff.instances.astype(np.uint16)).save(raw, format="PNG", compress_level=1)
    atomic_write(out / f"{name}_instances.png", raw.getvalue())
    write_jsonl(out / f"{name}_cells.jsonl", ff.cells)
    h, w = ff.image.shape[:2]
    meta = {"generator": "unihema.synth", "kind": "field", "width": w, "height": h,
            "um_per_px": ff.um_per_px, "seed": ff.layout.seed, "spec": ff.layout.spec.to_dict(),
            "optics": ff.layout.optics, "mask_values": {str(k): v for k, v in MASK_VALUES.items()},
            "files": {"image": f"{name}.png", "mask": f"{name}_mask.png",
                      "instances": f"{name}_instances.png", "cells": f"{name}_cells.jsonl"},
            "summary": ff.summary()}
    atomic_write(out / f"{name}.json", (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    return meta
