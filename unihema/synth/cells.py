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

RED_MORPHOLOGIES = ("red blood cell", "target cell", "spherocyte", "elliptocyte", "sickle cell",
                    "schistocyte", "teardrop cell")
WHITE_TYPES = ("segmented neutrophil", "band neutrophil", "lymphocyte", "monocyte", "eosinophil",
               "basophil", "myeloblast", "promyelocyte", "atypical lymphocyte")

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
GRANULE_COLOUR = {"pink": (214.0, 118.0, 176.0), "red": (222.0, 78.0, 58.0),
                  "purple": (70.0, 18.0, 98.0)}
CHROMATIN = {"densely": (84.0, 36.0, 118.0), "loosely": (150.0, 108.0, 190.0)}

# Per-type attribute distributions. "granules" is joint over (granularity, type, colour) so that
# "no granularity" always comes with "nil" type and colour. Probabilities follow textbook
# descriptions (Bain, Blood Cells) sharpened so that the type stays readable from the pixels.
_G0 = ("no", "nil", "nil")
WHITE_PROFILES: Dict[str, Dict[str, Dict]] = {
    "segmented neutrophil": dict(
        cell_size={"big": .75, "small": .25}, cell_shape={"round": .9, "irregular": .1},
        nucleus_shape={"segmented-multilobed": .7, "segmented-bilobed": .3},
        nuclear_cytoplasmic_ratio={"low": .95, "high": .05},
        chromatin_density={"densely": .95, "loosely": .05},
        cytoplasm_vacuole={"no": .9, "yes": .1}, cytoplasm_texture={"clear": .8, "frosted": .2},
        cytoplasm_colour={"light blue": .85, "blue": .05, "purple blue": .1},
        granules={("yes", "small", "pink"): .85, ("yes", "small", "purple"): .05, _G0: .1}),
    "band neutrophil": dict(
        cell_size={"big": .75, "small": .25}, cell_shape={"round": .9, "irregular": .1},
        nucleus_shape={"unsegmented-band": .9, "unsegmented-indented": .1},
        nuclear_cytoplasmic_ratio={"low": .9, "high": .1},
        chromatin_density={"densely": .9, "loosely": .1},
        cytoplasm_vacuole={"no": .9, "yes": .1}, cytoplasm_texture={"clear": .8, "frosted": .2},
        cytoplasm_colour={"light blue": .85, "blue": .05, "purple blue": .1},
        granules={("yes", "small", "pink"): .85, ("yes", "small", "purple"): .05, _G0: .1}),
    "lymphocyte": dict(
        cell_size={"small": .9, "big": .1}, cell_shape={"round": .9, "irregular": .1},
        nucleus_shape={"unsegmented-round": .85, "unsegmented-indented": .15},
        nuclear_cytoplasmic_ratio={"high": .9, "low": .1},
        chromatin_density={"densely": .9, "loosely": .1},
        cytoplasm_vacuole={"no": .95, "yes": .05}, cytoplasm_texture={"clear": .9, "frosted": .1},
        cytoplasm_colour={"blue": .55, "light blue": .45},
        granules={_G0: .92, ("yes", "small", "pink"): .08}),
    "monocyte": dict(
        cell_size={"big": .95, "small": .05}, cell_shape={"irregular": .45, "round": .55},
        nucleus_shape={"unsegmented-indented": .55, "irregular": .3, "unsegmented-band": .1,
                       "unsegmented-round": .05},
        nuclear_cytoplasmic_ratio={"low": .75, "high": .25},
        chromatin_density={"loosely": .8, "densely": .2},
        cytoplasm_vacuole={"yes": .45, "no": .55}, cytoplasm_texture={"frosted": .8, "clear": .2},
        cytoplasm_colour={"purple blue": .7, "blue": .2, "light blue": .1},
        granules={_G0: .75, ("yes", "small", "pink"): .15, ("yes", "small", "purple"): .1}),
    "eosinophil": dict(
        cell_size={"big": .8, "small": .2}, cell_shape={"round": .9, "irregular": .1},
        nucleus_shape={"segmented-bilobed": .8, "segmented-multilobed": .15,
                       "unsegmented-band": .05},
        nuclear_cytoplasmic_ratio={"low": .95, "high": .05},
        chromatin_density={"densely": .9, "loosely": .1},
        cytoplasm_vacuole={"no": .95, "yes": .05}, cytoplasm_texture={"clear": .9, "frosted": .1},
        cytoplasm_colour={"light blue": .8, "blue": .2},
        granules={("yes", "round", "red"): .8, ("yes", "coarse", "red"): .15,
                  ("yes", "round", "pink"): .05}),
    "basophil": dict(
        cell_size={"small": .6, "big": .4}, cell_shape={"round": .8, "irregular": .2},
        nucleus_shape={"irregular": .5, "segmented-bilobed": .25, "unsegmented-indented": .25},
        nuclear_cytoplasmic_ratio={"low": .7, "high": .3},
        chromatin_density={"densely": .8, "loosely": .2},
        cytoplasm_vacuole={"no": .9, "yes": .1}, cytoplasm_texture={"clear": .8, "frosted": .2},
        cytoplasm_colour={"light blue": .6, "purple blue": .4},
        granules={("yes", "coarse", "purple"): .95, ("yes", "round", "purple"): .05}),
    "myeloblast": dict(
        cell_size={"big": .85, "small": .15}, cell_shape={"round": .85, "irregular": .15},
        nucleus_shape={"unsegmented-round": .8, "unsegmented-indented": .15, "irregular": .05},
        nuclear_cytoplasmic_ratio={"high": .9, "low": .1},
        chromatin_density={"loosely": .9, "densely": .1},
        cytoplasm_vacuole={"no": .9, "yes": .1}, cytoplasm_texture={"clear": .8, "frosted": .2},
        cytoplasm_colour={"blue": .85, "purple blue": .1, "light blue": .05},
        granules={_G0: .85, ("yes", "small", "purple"): .15}),
    "promyelocyte": dict(
        cell_size={"big": .95, "small": .05}, cell_shape={"round": .85, "irregular": .15},
        nucleus_shape={"unsegmented-round": .55, "unsegmented-indented": .4, "irregular": .05},
        nuclear_cytoplasmic_ratio={"high": .55, "low": .45},
        chromatin_density={"loosely": .75, "densely": .25},
        cytoplasm_vacuole={"no": .85, "yes": .15}, cytoplasm_texture={"clear": .75, "frosted": .25},
        cytoplasm_colour={"blue": .6, "purple blue": .3, "light blue": .1},
        granules={("yes", "coarse", "purple"): .75, ("yes", "round", "purple"): .15,
                  ("yes", "small", "purple"): .05, ("yes", "coarse", "red"): .05}),
    "atypical lymphocyte": dict(
        cell_size={"big": .85, "small": .15}, cell_shape={"irregular": .75, "round": .25},
        nucleus_shape={"irregular": .4, "unsegmented-indented": .35, "unsegmented-round": .25},
        nuclear_cytoplasmic_ratio={"low": .7, "high": .3},
        chromatin_density={"loosely": .55, "densely": .45},
        cytoplasm_vacuole={"no": .8, "yes": .2}, cytoplasm_texture={"clear": .75, "frosted": .25},
        cytoplasm_colour={"blue": .8, "light blue": .1, "purple blue": .1},
        granules={_G0: .85, ("yes", "small", "pink"): .15}),
}
#: Types whose granules overlie the nucleus too (basophil granules obscure it).
GRANULES_OVER_NUCLEUS = ("basophil",)


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


def _pick(rng: np.random.Generator, dist: Dict) -> object:
    keys = list(dist)
    p = np.array([dist[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def sample_white_attributes(rng: np.random.Generator, cell_type: str) -> Dict[str, str]:
    """Attributes of one white cell of ``cell_type``, drawn from its profile (all 11 keys)."""
    prof = WHITE_PROFILES[cell_type]
    out = {k: str(_pick(rng, v)) for k, v in prof.items() if k != "granules"}
    out["granularity"], out["granule_type"], out["granule_colour"] = _pick(rng, prof["granules"])
    return out


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
        outline, amp = _harmonics(rng, (2, 3), (0.0, 0.025))
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
        a, b = radius * rng.uniform(1.25, 1.45), radius * rng.uniform(0.5, 0.6)
        # A crescent: the cell ellipse minus a slightly smaller one shifted along the minor axis.
        shift = b * rng.uniform(0.6, 0.75)
        cut = ("ellipse", shift, a * 0.92, b * 1.0)
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
