"""Overlay pictures of an analysis: each field with the box of every cell it holds.

A field is drawn from its preview (:attr:`~unihema.analysis.run.FieldResult.preview`, the field
downscaled so its longer side is at most :data:`~unihema.analysis.run.PREVIEW_SIDE` pixels), so
a 20,000-pixel scan gives a picture of a few megapixels. Box colours follow the lineage
(:data:`LINEAGE_COLOURS`, a colour-blind-safe palette); cells that need review get a thicker
box. Files: ``overlays/<field>.png`` in the output folder (the name made file-safe).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Sequence, Union

import numpy as np
from PIL import Image, ImageDraw

from unihema.analysis.records import CellRecord

#: lineage -> box colour (Okabe-Ito), ``other`` for the rest
LINEAGE_COLOURS = {"red blood cell": "#0072B2", "white blood cell": "#009E73",
                   "platelet": "#E69F00", "malaria parasite": "#CC79A7",
                   "nucleated red cell precursor": "#D55E00", "other": "#555555"}


def colour_of(lineage: str) -> str:
    return LINEAGE_COLOURS.get(lineage, LINEAGE_COLOURS["other"])


def safe_name(name: str) -> str:
    """A file name made of ``[A-Za-z0-9._-]`` from a field's name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "field"


def draw_overlay(preview: np.ndarray, scale: float, cells: Sequence[CellRecord]) -> Image.Image:
    """``preview`` (``uint8 [h, w, 3]``, the field scaled by ``scale``) with each cell's box."""
    image = Image.fromarray(preview).convert("RGB")
    draw = ImageDraw.Draw(image)
    for c in cells:
        x0, y0, x1, y1 = (v * scale for v in c.box)
        width = 3 if c.needs_review else 1
        if x1 - x0 < 1 or y1 - y0 < 1:
            continue
        draw.rectangle([x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)], outline=colour_of(c.lineage),
                       width=width)
    return image


def write_overlays(analysis, out: Union[str, Path]) -> Dict[str, str]:
    """``overlays/<field>.png`` for every field of ``analysis`` (a
    :class:`~unihema.analysis.run.SmearAnalysis`); field name -> path relative to ``out``."""
    from unihema.analysis.run import iter_field_cells

    out = Path(out)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    paths: Dict[str, str] = {}
    used = set()
    for f, cells in iter_field_cells(analysis):
        if f.preview is None:
            continue
        stem = safe_name(Path(f.name).stem)
        while stem in used:
            stem += "_"
        used.add(stem)
        rel = f"overlays/{stem}.png"
        draw_overlay(f.preview, f.preview_scale, cells).save(out / rel, compress_level=1)
        paths[f.name] = rel
    return paths
