"""Stitched whole-slide scans, written tile by tile with exact truth: :func:`write_scan`.

A scan is one large :class:`~unihema.synth.layout.SmearLayout` painted in bands of ``tile``
rows; each band is cut into ``tile`` x ``tile`` tiles that stream into a tiled TIFF, so memory
stays at a few bands' worth whatever the size (up to 20,000 x 20,000 px and beyond). Output::

    <out>/scan.tif             RGB, tiled (tile x tile), zlib-compressed by default, BigTIFF when
                               large; resolution tags in pixels per cm and a JSON description
                               holding "um_per_px"
    <out>/scan_instances.tif   uint32 cell ids, same tiling (``instances=True``)
    <out>/scan_cells.jsonl     one cell a line, global pixel coordinates (record of
                               :mod:`unihema.synth.smear`, plus "on_seam" and "seam_placed")
    <out>/scan.json            size, um_per_px, tile, seam lines, spec, summary, timings

``seam``/``seam_cells``: analysis tiles of side ``seam`` cut the scan along ``x = k * seam`` and
``y = k * seam``; ``seam_cells`` cells are centred exactly on those lines (a quarter on
crossings). ``on_seam`` is geometric truth for every cell: its box crosses a seam line, i.e. it
has pixels on both sides of it (``x0 < k * seam < x1`` or the same in ``y``).

The scan is a flat-field corrected mosaic: the stain, blur and noise of one layout, a gentle
lamp gradient across the whole scan, no per-tile vignette, and no visible tile borders (each
band is painted with a blur margin).
"""

from __future__ import annotations

import json
import time
import zlib
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
from tqdm import tqdm

from unihema.synth.layout import SmearLayout, SmearSpec, plan_smear, seam_lines
from unihema.synth.render import REACH_UM, blur_margin, compose, observe
from unihema.synth.smear import _footprint_totals, cell_records, truth_summary, write_jsonl

SCAN = "scan.tif"
INSTANCES = "scan_instances.tif"
CELLS = "scan_cells.jsonl"
META = "scan.json"


def crosses_seam(box, seams_x, seams_y) -> bool:
    """Whether box ``[x0, y0, x1, y1]`` has pixels on both sides of a seam line."""
    x0, y0, x1, y1 = box
    return any(x0 < s < x1 for s in seams_x) or any(y0 < s < y1 for s in seams_y)


class _Bands:
    """Paints the layout band by band and hands out observed RGB tiles in TIFF order
    (row-major); gathers each cell's footprint and visible pixels on the way."""

    def __init__(self, layout: SmearLayout, um_per_px: float, hw: Tuple[int, int], tile: int,
                 instances: bool, progress: bool):
        self.layout, self.um, self.hw, self.tile = layout, um_per_px, hw, tile
        self.margin = blur_margin(layout, um_per_px)
        self.ys = np.array([c.y for c in layout.cells], np.float64)
        self.feet: Dict[int, Tuple[List[int], int]] = {}
        self.visible = np.zeros(len(layout.cells) + 1, np.int64)
        self.instance_tiles: Optional[List[bytes]] = [] if instances else None
        self.progress = progress
        self.seconds = {"paint": 0.0, "optics": 0.0}

    def _merge(self, feet: Dict[int, Tuple[List[int], int]]) -> None:
        for cid, (b, n) in feet.items():
            if cid in self.feet:
                a, m = self.feet[cid]
                b = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                n += m
            self.feet[cid] = (b, n)

    def tiles(self) -> Iterator[np.ndarray]:
        H, W = self.hw
        t, m, um = self.tile, self.margin, self.um
        reach = REACH_UM + (m + 2) * um
        bands = range(0, H, t)
        for y0 in tqdm(bands, desc="scan bands", unit="band", disable=not self.progress):
            h = min(t, H - y0)
            t0 = time.perf_counter()
            idx = np.nonzero((self.ys >= y0 * um - reach) & (self.ys <= (y0 + h) * um + reach))[0]
            painted = compose(self.layout, um, (y0, 0, h, W), self.hw, margin=m,
                              cells=[self.layout.cells[i] for i in idx])
            self._merge(painted.feet)
            inst = painted.core(painted.inst)
            self.visible += np.bincount(inst.ravel(), minlength=len(self.visible))
            self.seconds["paint"] += time.perf_counter() - t0
            for x0 in range(0, W, t):
                w = min(t, W - x0)
                t0 = time.perf_counter()
                rng = np.random.default_rng([self.layout.seed, 11, y0 // t, x0 // t])
                sub = painted.canvas[:, x0:x0 + w + 2 * m]
                img = observe(sub, self.layout, um, (y0 - m, x0 - m), self.hw, rng,
                              vignette=False)[m:m + h, m:m + w]
                out = np.zeros((t, t, 3), np.uint8)
                out[:h, :w] = img
                if self.instance_tiles is not None:
                    ids = np.zeros((t, t), "<u4")
                    ids[:h, :w] = inst[:, x0:x0 + w]
                    self.instance_tiles.append(zlib.compress(ids.tobytes(), 1))
                self.seconds["optics"] += time.perf_counter() - t0
                yield out


def scan_size(size: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    """``(height, width)`` from an int side or a ``(height, width)`` pair."""
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 64 or w < 64:
        raise ValueError(f"scan of {w}x{h} px is too small (need 64+ per side)")
    return h, w


def write_scan(out: Union[str, Path], size: Union[int, Tuple[int, int]] = 6000,
               um_per_px: float = 0.12, seed: int = 0, spec: Optional[SmearSpec] = None,
               seam: Optional[int] = 512, seam_cells: int = 40, tile: int = 512,
               compression: Optional[str] = "zlib", instances: bool = True,
               progress: bool = False) -> Dict[str, Any]:
    """Write a synthetic stitched scan of ``size`` px (side or ``(height, width)``) into ``out``.

    Args:
        um_per_px: scale (0.1-0.25 for 100x oil objectives).
        seam: side of the analysis tiles whose borders get seam cells (None: no seam cells).
        seam_cells: cells centred on seam lines.
        tile: TIFF tile side (a multiple of 16).
        compression: a tifffile compression name (``"zlib"``, ``None``...).
        instances: also write the uint32 instance map as a tiled TIFF.

    Returns the ``scan.json`` content (also written).
    """
    import tifffile

    H, W = scan_size(size)
    if tile % 16 or tile < 64:
        raise ValueError(f"tile={tile} (TIFF tiles need a multiple of 16, at least 64)")
    if not 0.02 <= um_per_px <= 2.0:
        raise ValueError(f"um_per_px={um_per_px} (need 0.02..2.0; 100x objectives: 0.1-0.25)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / META).unlink(missing_ok=True)
    t_start = time.perf_counter()
    layout = plan_smear(W * um_per_px, H * um_per_px, seed, spec,
                        seam_um=seam * um_per_px if seam else None, seam_cells=seam_cells)
    t_plan = time.perf_counter() - t_start
    bands = _Bands(layout, um_per_px, (H, W), tile, instances, progress)
    big = H * W * 3 > 2 ** 31
    res = 1e4 / um_per_px  # pixels per centimetre
    common = dict(tile=(tile, tile), bigtiff=big, resolution=(res, res),
                  resolutionunit="CENTIMETER", metadata={"um_per_px": um_per_px})
    tmp = out / f".{SCAN}.tmp"
    tifffile.imwrite(tmp, bands.tiles(), shape=(H, W, 3), dtype=np.uint8, photometric="rgb",
                     compression=compression, **common)
    tmp.replace(out / SCAN)
    t_write = time.perf_counter()
    if instances:
        tmp = out / f".{INSTANCES}.tmp"
        tifffile.imwrite(tmp, iter(bands.instance_tiles), shape=(H, W), dtype="<u4",
                         photometric="minisblack", compression="zlib", **common)
        tmp.replace(out / INSTANCES)
        bands.instance_tiles = None

    edge = [cid for cid, (b, _) in bands.feet.items()
            if b[0] == 0 or b[1] == 0 or b[2] == W or b[3] == H]
    totals = {cid: n for cid, (_, n) in bands.feet.items()}
    totals.update(_footprint_totals(layout, um_per_px, edge))
    cells = cell_records(layout, um_per_px, bands.feet, bands.visible, totals)
    sx, sy = seam_lines(W, seam), seam_lines(H, seam)
    placed = {c.id for c in layout.cells if c.seam}
    for rec in cells:
        rec["on_seam"] = crosses_seam(rec["box"], sx, sy)
        rec["seam_placed"] = rec["id"] in placed
    write_jsonl(out / CELLS, cells)
    meta = {
        "generator": "unihema.synth", "kind": "scan", "width": W, "height": H,
        "um_per_px": um_per_px, "tile": tile, "compression": compression, "seed": seed,
        "seam": seam, "seam_lines": {"x": sx, "y": sy}, "seam_cells": len(placed),
        "cells_on_seams": sum(r["on_seam"] for r in cells), "cells": len(cells),
        "spec": layout.spec.to_dict(), "optics": layout.optics,
        "files": {"image": SCAN, "cells": CELLS, **({"instances": INSTANCES} if instances
                                                    else {})},
        "summary": truth_summary(cells),
        "seconds": {"plan": round(t_plan, 2), "paint": round(bands.seconds["paint"], 2),
                    "optics_and_tiles": round(bands.seconds["optics"], 2),
                    "image_file": round(t_write - t_start - t_plan, 2),
                    "total": round(time.perf_counter() - t_start, 2)},
    }
    from unihema.synth.writer import atomic_write

    atomic_write(out / META, (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    return meta
