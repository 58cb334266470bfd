"""Draw a :class:`~unihema.synth.layout.SmearLayout` at any scale, one window at a time.

:func:`compose` paints every cell that reaches a window of the image (reference colours, the
semantic mask and the instance map) and reports each cell's footprint inside the window's core;
:func:`observe` then applies the layout's stain, lamp, blur and sensor noise to a painted
window. Whole fields are one window; stitched scans are painted band by band
(:mod:`unihema.synth.scan`) and never exist whole in memory.

Scale: :mod:`unihema.synth.cells` draws at :data:`~unihema.synth.layout.NATIVE_UM_PER_PX`; each
cell is drawn there from its own seed and resampled by ``s = NATIVE_UM_PER_PX / um_per_px``
(bilinear colours, a bilinear footprint thresholded at 0.5, nearest semantic values), its centre
mapped exactly to ``centre_um / um_per_px``. A cell is thus the same at every magnification up
to resampling, and the painting of a pixel depends only on the cells that reach it, so windows
tile the image without seams. Blur is in micrometres (it grows with ``s``), noise per pixel.

Conventions: pixel ``(r, c)`` covers ``[c, c+1) x [r, r+1)``; windows are ``(y0, x0, h, w)``
in global pixels; boxes are ``x0, y0, x1, y1`` pixel edges; instance values are cell ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image, ImageFilter

from unihema.synth import cells as draw
from unihema.synth.cells import Patch
from unihema.synth.field import _stain_matrix
from unihema.synth.layout import NATIVE_UM_PER_PX, PlannedCell, SmearLayout

#: Farthest a drawn cell reaches from its centre, in micrometres (a big irregular white cell).
REACH_UM = 12.0
_BACKGROUND = np.array([236.0, 229.0, 226.0])
_GRAIN_UM = 40.0  # size of the slow background shading


def draw_native(cell: PlannedCell) -> Patch:
    """The cell drawn at the native scale from its own seed (same pixels for any window)."""
    rng = np.random.default_rng(cell.seed)
    cy, cx = cell.y / NATIVE_UM_PER_PX, cell.x / NATIVE_UM_PER_PX
    if cell.lineage == "red blood cell":
        return draw.draw_red_cell(rng, cell.type, cy, cx, cell.radius)
    if cell.lineage == "white blood cell":
        return draw.draw_white_cell(rng, cell.type, cell.attributes, cy, cx)
    if cell.lineage == "platelet":
        return draw.draw_platelet(rng, cy, cx)
    return draw.draw_ring_form(rng, cy, cx)


def _axis(origin: int, n: int, s: float):
    """Target pixel range of a padded native axis and its bilinear / nearest source indices."""
    t0 = int(np.floor((origin + 0.5) * s))
    t1 = max(t0 + 1, int(np.ceil((origin + n - 0.5) * s)))
    v = (np.arange(t0, t1, dtype=np.float64) + 0.5) / s - origin - 0.5
    i = np.clip(np.floor(v).astype(np.int64), 0, n - 2)
    f = np.clip(v - i, 0.0, 1.0).astype(np.float32)
    near = np.clip(np.rint(v).astype(np.int64), 0, n - 1)
    return t0, i, f, near


def scale_patch(p: Patch, s: float) -> Patch:
    """Resample a native patch by ``s`` into target pixels (origin in target coordinates)."""
    if s == 1.0:
        return p
    mask = np.pad(p.mask.astype(np.float32), 1)
    rgb = np.pad(p.rgb, ((1, 1), (1, 1), (0, 0)), mode="edge")
    sem = np.pad(p.sem, 1, mode="edge")
    y0, iy, fy, ny = _axis(p.y0 - 1, mask.shape[0], s)
    x0, ix, fx, nx = _axis(p.x0 - 1, mask.shape[1], s)

    def lerp(a: np.ndarray) -> np.ndarray:
        a = a[iy] * (1 - fy).reshape((-1,) + (1,) * (a.ndim - 1)) + \
            a[iy + 1] * fy.reshape((-1,) + (1,) * (a.ndim - 1))
        gx = (1 - fx).reshape((1, -1) + (1,) * (a.ndim - 2))
        return a[:, ix] * gx + a[:, ix + 1] * fx.reshape((1, -1) + (1,) * (a.ndim - 2))

    m = lerp(mask) > 0.5
    return Patch(y0, x0, m, lerp(rgb).astype(np.float32), sem[ny][:, nx], dict(p.info))


@dataclass
class Painted:
    """A composed window: ``canvas`` [h, w, 3] float32 reference colours, ``sem`` [h, w] uint8
    semantic mask, ``inst`` [h, w] int32 cell ids, all including a ``margin`` on each side;
    ``feet`` cell id -> (box, pixels) of its footprint inside the core (box in global pixels;
    occluded parts included; a ring form's footprint is what was painted into its host)."""

    y0: int
    x0: int
    margin: int
    canvas: np.ndarray
    sem: np.ndarray
    inst: np.ndarray
    feet: Dict[int, Tuple[List[int], int]]

    def core(self, a: np.ndarray) -> np.ndarray:
        m = self.margin
        return a[m:a.shape[0] - m, m:a.shape[1] - m]


def _background(layout: SmearLayout, um_per_px: float, y0: int, x0: int, h: int,
                w: int) -> np.ndarray:
    """The unstained slide [h, w, 3] float32: a tint and slow shading fixed in micrometres."""
    rng = np.random.default_rng([layout.seed, 7])
    tint = _BACKGROUND * rng.uniform(0.98, 1.02, 3)
    gh = int(np.ceil(layout.height_um / _GRAIN_UM)) + 3
    gw = int(np.ceil(layout.width_um / _GRAIN_UM)) + 3
    grain = rng.standard_normal((gh, gw)).astype(np.float32)
    k = um_per_px / _GRAIN_UM
    gy = np.clip((np.arange(y0, y0 + h) + 0.5) * k + 1.0, 0, gh - 1.001)
    gx = np.clip((np.arange(x0, x0 + w) + 0.5) * k + 1.0, 0, gw - 1.001)
    iy, ix = gy.astype(np.int64), gx.astype(np.int64)
    fy, fx = (gy - iy).astype(np.float32)[:, None], (gx - ix).astype(np.float32)[None, :]
    shade = ((grain[iy][:, ix] * (1 - fx) + grain[iy][:, ix + 1] * fx) * (1 - fy)
             + (grain[iy + 1][:, ix] * (1 - fx) + grain[iy + 1][:, ix + 1] * fx) * fy)
    out = np.empty((h, w, 3), np.float32)
    out[:] = tint.astype(np.float32)
    out += (shade * 2.5)[..., None]
    return out


def select(layout: SmearLayout, um_per_px: float, y0: int, x0: int, h: int,
           w: int) -> List[PlannedCell]:
    """Cells whose drawing may reach the window, in drawing (id) order."""
    reach = REACH_UM + 2 * um_per_px
    ya, yb = y0 * um_per_px - reach, (y0 + h) * um_per_px + reach
    xa, xb = x0 * um_per_px - reach, (x0 + w) * um_per_px + reach
    return [c for c in layout.cells if ya <= c.y <= yb and xa <= c.x <= xb]


def compose(layout: SmearLayout, um_per_px: float, window: Tuple[int, int, int, int],
            image_hw: Tuple[int, int], margin: int = 0,
            cells: Optional[List[PlannedCell]] = None) -> Painted:
    """Paint the window ``(y0, x0, h, w)`` plus ``margin`` pixels around it.

    ``image_hw``: the full image size; footprints are clipped to it and to the core.
    ``cells``: a preselected superset of the cells reaching the window (default: all).
    """
    y0, x0, h, w = window
    H, W = image_hw
    wy0, wx0, wh, ww = y0 - margin, x0 - margin, h + 2 * margin, w + 2 * margin
    s = NATIVE_UM_PER_PX / um_per_px
    canvas = _background(layout, um_per_px, wy0, wx0, wh, ww)
    sem = np.zeros((wh, ww), np.uint8)
    inst = np.zeros((wh, ww), np.int32)
    cy0, cx0 = max(y0, 0), max(x0, 0)
    cy1, cx1 = min(y0 + h, H), min(x0 + w, W)
    feet: Dict[int, Tuple[List[int], int]] = {}
    todo = select(layout, um_per_px, wy0, wx0, wh, ww) if cells is None else cells
    for cell in todo:
        p = scale_patch(draw_native(cell), s)
        ph, pw = p.mask.shape
        ya, xa = max(p.y0, wy0), max(p.x0, wx0)
        yb, xb = min(p.y0 + ph, wy0 + wh), min(p.x0 + pw, wx0 + ww)
        if yb <= ya or xb <= xa:
            continue
        m = p.mask[ya - p.y0:yb - p.y0, xa - p.x0:xb - p.x0].copy()
        sl = (slice(ya - wy0, yb - wy0), slice(xa - wx0, xb - wx0))
        if cell.host:
            m &= inst[sl] == cell.host
        canvas[sl][m] = p.rgb[ya - p.y0:yb - p.y0, xa - p.x0:xb - p.x0][m]
        sem[sl][m] = p.sem[ya - p.y0:yb - p.y0, xa - p.x0:xb - p.x0][m]
        inst[sl][m] = cell.id
        # footprint inside the core (and the image)
        qa, qb = max(ya, cy0), min(yb, cy1)
        ra, rb = max(xa, cx0), min(xb, cx1)
        if qb <= qa or rb <= ra:
            continue
        f = m[qa - ya:qb - ya, ra - xa:rb - xa]
        n = int(f.sum())
        if n:
            rows, cols = np.nonzero(f.any(1))[0], np.nonzero(f.any(0))[0]
            feet[cell.id] = ([ra + int(cols[0]), qa + int(rows[0]), ra + int(cols[-1]) + 1,
                              qa + int(rows[-1]) + 1], n)
    return Painted(wy0, wx0, margin, canvas, sem, inst, feet)


def blur_margin(layout: SmearLayout, um_per_px: float) -> int:
    """Pixels of context a window needs so its blurred core equals the whole image's."""
    return int(np.ceil(3 * layout.optics["blur"] * NATIVE_UM_PER_PX / um_per_px)) + 2


def observe(canvas: np.ndarray, layout: SmearLayout, um_per_px: float,
            origin: Tuple[int, int], image_hw: Tuple[int, int], rng: np.random.Generator,
            vignette: bool = True) -> np.ndarray:
    """Reference colours [h, w, 3] float at global ``origin`` -> observed uint8 image.

    The stain acts in optical density (as :func:`unihema.synth.field.apply_optics`); the lamp
    is a function of global position over the whole image (``vignette=False``: a flat-field
    corrected scan keeps only the gentle gradient); blur sigma scales with magnification.
    """
    o = layout.optics
    h, w, _ = canvas.shape
    H, W = image_hw
    od = -np.log((np.clip(canvas, 0, 255) + 1.0) / 256.0)
    m = _stain_matrix(o["hue"], o["saturation"], o["density"]).astype(np.float32)
    mixed = od[..., 0:1] * m[:, 0] + od[..., 1:2] * m[:, 1] + od[..., 2:3] * m[:, 2]
    out = 256.0 * np.exp(-mixed) - 1.0
    yy = (-1 + 2 * (np.arange(h, dtype=np.float32) + origin[0]) / max(1, H - 1))[:, None]
    xx = (-1 + 2 * (np.arange(w, dtype=np.float32) + origin[1]) / max(1, W - 1))[None, :]
    gy, gx = o["gradient"]
    lamp = o["brightness"] * (1 - 0.5 * (o["vignette"] if vignette else 0.0)
                              * (yy * yy + xx * xx))
    lamp = lamp * (1 + gy * yy + gx * xx)
    out = out * lamp[..., None] * np.asarray(o["tint"], np.float32)
    img = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    img = img.filter(ImageFilter.GaussianBlur(o["blur"] * NATIVE_UM_PER_PX / um_per_px))
    noisy = np.asarray(img, np.float32) + rng.standard_normal((h, w, 3), np.float32) * o["noise"]
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
