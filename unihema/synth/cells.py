"""Drawing of single objects (red cells, white cells, platelets, ring forms) as local patches.

Every ``draw_*`` function returns a :class:`Patch`: a small RGB tile with the object's exact
footprint and semantic values, positioned in field coordinates. Nothing here touches a full
field; :mod:`unihema.synth.field` pastes the patches. Conventions:

* coordinates are float pixels with pixel ``(r, c)`` covering ``[c, c+1) x [r, r+1)``, so the
  pixel centre is ``(r + 0.5, c + 0.5)`` (the box convention of :mod:`unihema.data.sample`);
* colours are *reference* stain colours, float RGB in ``[0, 255]``; the per-field stain,
  illumination, blur and noise are applied afterwards to the whole field;
* sizes are in pixels at the generator's fixed magnification (a red cell is ~20 px wide).

White cells are drawn *from* their attribute values (:data:`unihema.data.vocab.ATTRIBUTES`), so
the attributes are visible: the nucleus outline follows ``nucleus_shape`` (lobes are separate
blobs joined by 1-px strands), chromatin density sets nucleus darkness and clumping, granules are
dots of the stated size and colour, vacuoles are clear round holes, ``frosted`` is fine noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

# Re-exported: callers draw and sample from one module.
from unihema.synth.profiles import (GRANULES_OVER_NUCLEUS, RED_MORPHOLOGIES,  # noqa: F401
                                    WHITE_PROFILES, WHITE_TYPES, sample_white_attributes)

# Semantic mask values (the on-disk mask PNG); names are canonical vocabulary terms.
BACKGROUND, RED, NUCLEUS, CYTOPLASM, PLATELET, PARASITE = range(6)

# Reference colours (RGB, before the per-field stain transform).
RBC_BODY = np.array([218.0, 112.0, 118.0])
RBC_PALLOR = np.array([240.0, 198.0, 192.0])
PLATELET_BODY = np.array([186.0, 142.0, 204.0])
PLATELET_GRANULE = np.array([112.0, 58.0, 142.0])
RING_BODY = np.array([112.0, 70.0, 168.0])
RING_CHROMATIN = np.array([82.0, 16.0, 86.0])
VACUOLE = np.array([244.0, 240.0, 242.0])
CYTO_COLOUR = {"light blue": (214.0, 214.0, 238.0), "blue": (132.0, 160.0, 224.0),
               "purple blue": (170.0, 146.0, 212.0)}
GRANULE_COLOUR = {"pink": (214.0, 118.0, 176.0), "red": (226.0, 96.0, 70.0),
                  "purple": (70.0, 18.0, 98.0)}
CHROMATIN = {"densely": (84.0, 36.0, 118.0), "loosely": (150.0, 108.0, 190.0)}


@dataclass
class Patch:
    """One drawn object: a tile of the field starting at pixel ``(y0, x0)`` (may be < 0).

    ``mask`` [h, w] bool is the exact footprint; ``rgb`` [h, w, 3] float32 and ``sem`` [h, w]
    uint8 are meaningful where ``mask`` is set. ``info`` records drawing facts for tests
    (``lobes``, ``vacuoles``, ``granules``...).
    """

    y0: int
    x0: int
    mask: np.ndarray
    rgb: np.ndarray
    sem: np.ndarray
    info: Dict[str, float] = field(default_factory=dict)


def _frame(cy: float, cx: float, extent: float) -> Tuple[int, int, np.ndarray, np.ndarray]:
    """Patch origin and centred pixel-centre offsets ``dy`` [h, 1], ``dx`` [1, w]."""
    y0, x0 = int(np.floor(cy - extent)) - 1, int(np.floor(cx - extent)) - 1
    n = int(np.ceil(2 * extent)) + 3
    dy = (np.arange(n, dtype=np.float32) + y0 + 0.5 - cy)[:, None]
    dx = (np.arange(n, dtype=np.float32) + x0 + 0.5 - cx)[None, :]
    return y0, x0, dy, dx


def _radial(dy, dx, a: float, b: float, angle: float,
            outline: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> np.ndarray:
    """Normalised radius ``t`` of a (perturbed) rotated ellipse: 0 at the centre, 1 on the edge.

    ``outline(theta)`` scales the ellipse radius per polar angle (harmonics, a teardrop tail).
    """
    c, s = np.cos(angle), np.sin(angle)
    u = (dx * c + dy * s) / a
    v = (dy * c - dx * s) / b
    t = np.sqrt(u * u + v * v)
    if outline is not None:
        t = t / outline(np.arctan2(v, u))
    return t


def _harmonics(rng: np.random.Generator, ks: Sequence[int], amp: Tuple[float, float]):
    terms = [(k, rng.uniform(*amp), rng.uniform(0, 2 * np.pi)) for k in ks]

    def outline(theta):
        r = 1.0
        for k, a, ph in terms:
            r = r + a * np.cos(k * theta + ph)
        return r

    return outline, sum(a for _, a, _ in terms)


def smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Unit-variance noise [h, w] float32 with blobs about ``scale`` pixels wide."""
    if scale <= 1.0:
        return rng.standard_normal((h, w), dtype=np.float32)
    g = rng.standard_normal((int(h / scale) + 2, int(w / scale) + 2), dtype=np.float32)
    n = np.asarray(Image.fromarray(g).resize((w, h), Image.BILINEAR))
    return (n - n.mean()) / (n.std() + 1e-6)


def _paint(rgb: np.ndarray, where: np.ndarray, colour) -> None:
    rgb[where] = np.asarray(colour, dtype=np.float32)


def _dots(rng, region: np.ndarray, count: int, radius: Tuple[float, float]) -> np.ndarray:
    """Mask of ``count`` round dots with centres inside ``region``, clipped to ``region``."""
    ys, xs = np.nonzero(region)
    if count <= 0 or ys.size == 0:
        return np.zeros_like(region)
    i = rng.integers(0, ys.size, size=count)
    cy = ys[i] + rng.uniform(0.2, 0.8, count)
    cx = xs[i] + rng.uniform(0.2, 0.8, count)
    r = rng.uniform(*radius, count)
    if radius[1] < 0.75:  # single-pixel dots: no distance test needed
        out = np.zeros_like(region)
        out[ys[i], xs[i]] = True
        return out
    h, w = region.shape
    yy = np.arange(h, dtype=np.float32)[None, :, None] + 0.5 - cy[:, None, None]
    xx = np.arange(w, dtype=np.float32)[None, None, :] + 0.5 - cx[:, None, None]
    return ((yy * yy + xx * xx) < (r * r)[:, None, None]).any(0) & region


# ----------------------------------------------------------------------------- red cells
def draw_red_cell(rng: np.random.Generator, morphology: str, cy: float, cx: float,
                  radius: float) -> Patch:
    """A red cell of ``morphology`` (one of :data:`RED_MORPHOLOGIES`) centred at ``(cy, cx)``.

    ``radius`` is that of a normal disc; the morphology scales and reshapes it. Normal, target,
    elliptocyte and teardrop cells keep a central pallor (a target cell adds a stained centre);
    spherocytes, sickle cells and schistocytes are dense and pallor-free, as in a stained smear.
    """
    angle = rng.uniform(0, np.pi)
    pallor, target, shade = rng.uniform(0.36, 0.48), False, 1.0
    outline, cut = None, None
    a = radius * rng.uniform(0.95, 1.05)
    b = a * rng.uniform(0.88, 1.0)
    if morphology in ("red blood cell", "target cell"):
        outline, _ = _harmonics(rng, (2, 3), (0.0, 0.025))
        target = morphology == "target cell"
        pallor = rng.uniform(0.5, 0.6) if target else pallor
    elif morphology == "spherocyte":
        a = b = radius * rng.uniform(0.7, 0.8)
        pallor, shade = 0.0, 0.86
    elif morphology == "elliptocyte":
        a, b = radius * rng.uniform(1.15, 1.3), radius * rng.uniform(0.5, 0.62)
        pallor = rng.uniform(0.3, 0.4)
    elif morphology == "teardrop cell":
        a = b = radius * rng.uniform(0.85, 0.95)
        tail, width = rng.uniform(0.7, 1.0), rng.uniform(0.22, 0.3)

        def outline(theta):  # a Gaussian bump in the polar radius makes the pointed tail
            d = np.angle(np.exp(1j * theta))
            return 1.0 + tail * np.exp(-0.5 * (d / width) ** 2)
        pallor = rng.uniform(0.3, 0.4)
    elif morphology == "sickle cell":
        a, b = radius * rng.uniform(1.25, 1.45), radius * rng.uniform(0.62, 0.72)
        # A crescent: the cell ellipse minus the same ellipse shifted along the minor axis,
        # which leaves a banana about a third as wide as it is long, with pointed ends.
        cut = ("ellipse", b * rng.uniform(0.95, 1.1), a, b)
        pallor, shade = 0.0, 0.88
    elif morphology == "schistocyte":
        a = b = radius * rng.uniform(0.78, 0.92)
        # A helmet: a disc with a large circular bite taken out of one side.
        cut = ("circle", a * rng.uniform(0.85, 1.05), a * rng.uniform(0.7, 0.9), 0.0)
        pallor, shade = 0.0, 0.9
    else:
        raise ValueError(f"unknown red cell morphology '{morphology}'; valid: {RED_MORPHOLOGIES}")
    extent = max(a, b) * (2.1 if morphology == "teardrop cell" else 1.1)
    y0, x0, dy, dx = _frame(cy, cx, extent)
    t = _radial(dy, dx, a, b, angle, outline)
    mask = t < 1.0
    if cut is not None:
        kind, off, ca, cb = cut
        sy, sx = np.cos(angle) * off, -np.sin(angle) * off  # along the ellipse's minor axis
        if kind == "ellipse":
            mask &= _radial(dy - sy, dx - sx, ca, cb, angle) >= 1.0
        else:
            mask &= _radial(dy - sy, dx - sx, ca, ca, 0.0) >= 1.0
    if mask.sum() < 12:  # degenerate fragment: fall back to a small dense disc
        mask = t < 1.0
    body = RBC_BODY * shade * rng.uniform(0.96, 1.04, 3)
    w = np.zeros_like(t)
    if pallor > 0:
        w = 1.0 / (1.0 + np.exp((t - pallor) / 0.07))
        if target:  # stained centre inside the pale ring: the "bull's eye"
            w = w * (1.0 / (1.0 + np.exp((0.24 - t) / 0.04)))
    w = w * rng.uniform(0.75, 1.0)
    rim = np.clip((t - 0.75) / 0.25, 0, 1) * 0.12  # edges look denser (more haemoglobin in path)
    rgb = body + w[..., None] * (RBC_PALLOR - body)
    rgb = rgb * (1.0 - rim[..., None])
    sem = np.full(mask.shape, RED, np.uint8)
    return Patch(y0, x0, mask, rgb.astype(np.float32), sem, {"radius": float(max(a, b))})


# ----------------------------------------------------------------------------- platelets
def draw_platelet(rng: np.random.Generator, cy: float, cx: float) -> Patch:
    """A platelet: a small irregular lilac fragment with dark granules (2-4 px radius)."""
    r = rng.uniform(2.3, 3.8)
    outline, amp = _harmonics(rng, (2, 3, 5), (0.03, 0.08))
    y0, x0, dy, dx = _frame(cy, cx, r * (1 + amp))
    t = _radial(dy, dx, r, r * rng.uniform(0.65, 1.0), rng.uniform(0, np.pi), outline)
    mask = t < 1.0
    rgb = np.empty(mask.shape + (3,), np.float32)
    rgb[:] = PLATELET_BODY * rng.uniform(0.95, 1.05)
    _paint(rgb, (rng.random(mask.shape) < 0.35) & (t < 0.8), PLATELET_GRANULE)
    sem = np.full(mask.shape, PLATELET, np.uint8)
    return Patch(y0, x0, mask, rgb, sem, {"radius": float(r)})


# ----------------------------------------------------------------------------- parasites
def draw_ring_form(rng: np.random.Generator, cy: float, cx: float) -> Patch:
    """A malaria ring form: a thin ring (2.5-3.5 px radius) with one or two chromatin dots."""
    rr = rng.uniform(2.5, 3.5)
    thick = rng.uniform(1.0, 1.4)
    extent = rr + thick + 1.6
    y0, x0, dy, dx = _frame(cy, cx, extent)
    rho = _radial(dy, dx, 1.0, rng.uniform(0.8, 1.0), rng.uniform(0, np.pi))
    ring = np.abs(rho - rr) < thick / 2
    n_dots = 1 if rng.random() < 0.7 else 2
    th0 = rng.uniform(0, 2 * np.pi)
    dots = np.zeros_like(ring)
    for k in range(n_dots):
        th = th0 + k * rng.uniform(0.5, 1.0)  # double dots sit close ("headphone" form)
        py, px = rr * np.sin(th), rr * np.cos(th)
        dr = rng.uniform(1.0, 1.5)
        dots |= (dy - py) ** 2 + (dx - px) ** 2 < dr * dr
    mask = ring | dots
    rgb = np.empty(mask.shape + (3,), np.float32)
    rgb[:] = RING_BODY
    _paint(rgb, dots, RING_CHROMATIN)
    sem = np.full(mask.shape, PARASITE, np.uint8)
    return Patch(y0, x0, mask, rgb, sem, {"radius": float(rr), "dots": n_dots})


# ----------------------------------------------------------------------------- white cells
# Farthest nucleus pixel from its centre, in units of the nucleus radius (harmonics included).
_NUCLEUS_EXTENT = {"unsegmented-round": 1.08, "unsegmented-indented": 1.08,
                   "unsegmented-band": 0.98, "segmented-bilobed": 1.2,
                   "segmented-multilobed": 1.18, "irregular": 1.35}


def _segment(dy, dx, p, q, half_width: float) -> np.ndarray:
    """Pixels within ``half_width`` of segment p-q (points ``(y, x)``): a chromatin strand."""
    vy, vx = q[0] - p[0], q[1] - p[1]
    L2 = vy * vy + vx * vx + 1e-9
    s = np.clip(((dy - p[0]) * vy + (dx - p[1]) * vx) / L2, 0.0, 1.0)
    ey, ex = dy - p[0] - s * vy, dx - p[1] - s * vx
    return ey * ey + ex * ex < half_width * half_width


def _lobes(rng, dy, dx, centres: List[Tuple[float, float]], rl: float) -> np.ndarray:
    """Separate oval lobes joined by 1-px strands (so lobes are countable after one erosion)."""
    out = np.zeros(np.broadcast_shapes(dy.shape, dx.shape), bool)
    for cy, cx in centres:
        out |= _radial(dy - cy, dx - cx, rl, rl * rng.uniform(0.85, 0.95),
                       rng.uniform(0, np.pi)) < 1.0
    for p, q in zip(centres[:-1], centres[1:]):
        out |= _segment(dy, dx, p, q, 0.5)
    return out


def _nucleus(rng, shape: str, dy, dx, rn: float) -> Tuple[np.ndarray, int]:
    """Nucleus mask of ``shape`` centred on the (already offset) grid, and its lobe count."""
    psi = rng.uniform(0, 2 * np.pi)
    if shape in ("unsegmented-round", "unsegmented-indented"):
        outline, _ = _harmonics(rng, (2, 3), (0.0, 0.03))
        nuc = _radial(dy, dx, rn, rn * rng.uniform(0.85, 1.0), psi, outline) < 1.0
        if shape == "unsegmented-indented":  # kidney shape: a circular bite from one side
            d, rb = rn * rng.uniform(0.85, 1.0), rn * rng.uniform(0.5, 0.62)
            nuc &= (dy - d * np.sin(psi)) ** 2 + (dx - d * np.cos(psi)) ** 2 >= rb * rb
        return nuc, 1
    if shape == "irregular":
        outline, _ = _harmonics(rng, (2, 3, 4, 5), (0.05, 0.08))
        return _radial(dy, dx, rn, rn * rng.uniform(0.8, 1.0), psi, outline) < 1.0, 1
    if shape == "unsegmented-band":  # a C-shaped band of even thickness, no constrictions
        rc, w = rn * rng.uniform(0.62, 0.7), rn * rng.uniform(0.5, 0.58)
        half = rng.uniform(1.8, 2.2)
        rho = np.sqrt(dy * dy + dx * dx)
        gap = np.abs(np.angle(np.exp(1j * (np.arctan2(dy, dx) - psi))))
        nuc = (np.abs(rho - rc) < w / 2) & (gap < half)
        for s in (-1, 1):
            ey, ex = rc * np.sin(psi + s * half), rc * np.cos(psi + s * half)
            nuc |= (dy - ey) ** 2 + (dx - ex) ** 2 < (w / 2) ** 2
        return nuc, 1
    if shape == "segmented-bilobed":
        rl = rn * rng.uniform(0.52, 0.58)
        d = rl + rng.uniform(0.7, 1.2)
        c = [(d * np.sin(psi), d * np.cos(psi)), (-d * np.sin(psi), -d * np.cos(psi))]
        return _lobes(rng, dy, dx, c, rl), 2
    if shape == "segmented-multilobed":
        # Plump lobes on an arc, neighbours 1-2 px apart: the classic 3-5 lobed neutrophil.
        ra, gap = rn * rng.uniform(0.62, 0.7), rng.uniform(1.0, 1.6)
        span = rng.uniform(1.1, 1.5) * np.pi
        n = int(rng.integers(3, 6))
        rl = min(rn * 0.5, ra * np.sin(span / (2 * (n - 1))) - gap / 2)
        while n > 3 and rl < 2.6:
            n -= 1
            rl = min(rn * 0.5, ra * np.sin(span / (2 * (n - 1))) - gap / 2)
        rl = max(rl, 2.6)  # every lobe must survive a 1-px erosion (it stays countable)
        chord = 2 * rl + gap
        # open arc while its two ends stay farther apart than neighbours (n steps < 2 pi)
        if chord < 2 * ra * np.sin(0.85 * np.pi / n):
            step = 2 * np.arcsin(chord / (2 * ra))
            ang = psi + (np.arange(n) - (n - 1) / 2) * step
        else:  # no room on an open arc (small cells): a closed cloverleaf of n lobes
            ra = chord / (2 * np.sin(np.pi / n))
            ang = psi + np.arange(n) * 2 * np.pi / n
        c = [(ra * np.sin(a), ra * np.cos(a)) for a in ang]
        return _lobes(rng, dy, dx, c, rl), n
    raise ValueError(f"unknown nucleus_shape '{shape}'")


def _grow(m: np.ndarray) -> np.ndarray:
    """One-pixel 4-neighbour dilation of a bool mask."""
    out = m.copy()
    out[1:] |= m[:-1]
    out[:-1] |= m[1:]
    out[:, 1:] |= m[:, :-1]
    out[:, :-1] |= m[:, 1:]
    return out


def draw_white_cell(rng: np.random.Generator, cell_type: str, attrs: Dict[str, str],
                    cy: float, cx: float) -> Patch:
    """A white cell of ``cell_type`` whose look follows ``attrs`` (all 11 schema keys).

    Radius: ``small`` 10.5-12.5 px, ``big`` 16-19.5 px. ``high`` N:C gives a nucleus of
    0.74-0.82 of the cell radius, ``low`` 0.48-0.58 (segmented nuclei split that into lobes).
    """
    R = rng.uniform(16.0, 19.5) if attrs["cell_size"] == "big" else rng.uniform(10.5, 12.5)
    angle = rng.uniform(0, np.pi)
    if attrs["cell_shape"] == "round":
        a, b = R, R * rng.uniform(0.93, 1.0)
        outline, amp = _harmonics(rng, (3,), (0.0, 0.02))
    else:  # pseudopod-like bulges and an oval body
        a, b = R * 1.05, R * rng.uniform(0.74, 0.84)
        outline, amp = _harmonics(rng, (2, 3, 4, 5), (0.035, 0.06))
    y0, x0, dy, dx = _frame(cy, cx, max(a, b) * (1 + amp))
    t = _radial(dy, dx, a, b, angle, outline)
    cell = t < 1.0
    # The nucleus must fit inside the smallest inscribed radius with a cytoplasm rim left.
    r_in = 0.9 * min(a, b) * (1 - amp)
    shape = attrs["nucleus_shape"]
    ext = _NUCLEUS_EXTENT[shape]
    frac = (rng.uniform(0.74, 0.82) if attrs["nuclear_cytoplasmic_ratio"] == "high"
            else rng.uniform(0.48, 0.58))
    if shape.startswith("segmented"):  # lobes spread wider than a round nucleus of equal area
        frac *= 1.25
    rn = min(frac * np.sqrt(a * b), r_in / ext)
    off = rng.uniform(0.2, 1.0) * max(0.0, r_in - rn * ext)
    phi = rng.uniform(0, 2 * np.pi)
    ndy, ndx = dy - off * np.sin(phi), dx - off * np.cos(phi)
    nuc, lobes = _nucleus(rng, shape, ndy, ndx, rn)
    nuc &= cell & (t < 0.94)
    h, w = cell.shape

    rgb = np.empty((h, w, 3), np.float32)
    rgb[:] = np.asarray(CYTO_COLOUR[attrs["cytoplasm_colour"]]) * rng.uniform(0.97, 1.03, 3)
    frosted = attrs["cytoplasm_texture"] == "frosted"
    # Frosted (ground-glass) cytoplasm: speckle ~1.5 px wide, coarse enough to survive the blur.
    rgb += (smooth_noise(rng, h, w, 1.5) * (20.0 if frosted else 2.0))[..., None]
    rgb *= (1.0 - 0.1 * np.clip((t - 0.88) / 0.12, 0, 1))[..., None]  # denser membrane edge

    dense = attrs["chromatin_density"] == "densely"
    base = np.asarray(CHROMATIN[attrs["chromatin_density"]]) * rng.uniform(0.95, 1.05, 3)
    # Dense chromatin is clumped (coarse dark blotches); loose chromatin is fine and even.
    tex = smooth_noise(rng, h, w, 2.5 if dense else 1.2) * (20.0 if dense else 8.0)
    rgb[nuc] = base + tex[nuc][:, None]
    if not dense and attrs["cell_size"] == "big" and rng.random() < 0.6:
        core = nuc & (np.sqrt(ndy * ndy + ndx * ndx) < 0.55 * rn)
        _paint(rgb, _dots(rng, core, int(rng.integers(1, 3)), (1.3, 2.0)), (182, 152, 212))

    cyto_only = cell & ~nuc
    vac = np.zeros_like(cell)
    if attrs["cytoplasm_vacuole"] == "yes":
        region = cyto_only & (t < 0.86)
        if region.sum() < 4:
            region = cyto_only
        n_vac = int(rng.integers(2, 6)) if R > 14 else int(rng.integers(1, 4))
        vac = _dots(rng, region, n_vac, (1.4, 2.4))
        # A thin darker rim outlines each hole, so vacuoles show even in pale cytoplasm.
        rim = cyto_only & ~vac & (_grow(vac) & ~vac)
        rgb[rim] *= 0.82
        _paint(rgb, vac, VACUOLE)
        cyto_only = cyto_only & ~vac
    gran_px = 0
    if attrs["granularity"] == "yes":
        over = cell_type in GRANULES_OVER_NUCLEUS
        region = (cell & (t < 0.95) & ~vac) if over else cyto_only
        area = float(region.sum())
        kind = attrs["granule_type"]
        density, radius = {"small": (0.22, (0.5, 0.7)), "round": (0.12, (1.1, 1.45)),
                           "coarse": (0.07, (1.4, 1.9))}[kind]
        g = _dots(rng, region, int(density * area), radius)
        colour = np.asarray(GRANULE_COLOUR[attrs["granule_colour"]])
        shade = rng.uniform(0.85, 1.1, size=(int(g.sum()), 1))
        rgb[g] = colour * shade
        gran_px = int(g.sum())
    sem = np.where(nuc, NUCLEUS, CYTOPLASM).astype(np.uint8)
    info = {"radius": float(R), "lobes": lobes, "vacuole_px": int(vac.sum()),
            "granule_px": gran_px}
    return Patch(y0, x0, cell, rgb, sem, info)
