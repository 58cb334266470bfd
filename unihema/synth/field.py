"""Compose one field of view and its exact truth: :func:`render_field`.

A field is drawn in a fixed order, each object overwriting earlier ones in the image, the semantic
mask and the instance map: red cells, platelets, white cells, then ring forms (clipped to the
visible pixels of their host red cell). The per-field stain, illumination, blur and noise are
applied to the finished image; the truth is computed from the drawn footprints, so it is exactly
what was drawn. Conventions:

* ``image`` [H, W, 3] uint8 RGB; ``mask`` [H, W] uint8 with values of :data:`MASK_VALUES`;
  ``instances`` [H, W] int32, ``k + 1`` where box ``k`` is the visible object, else 0;
* ``boxes`` [N, 4] float32 absolute ``x0, y0, x1, y1`` pixel edges, tight around each object's
  drawn footprint (occluded parts included) clipped to the image;
* objects with fewer than a few visible pixels (mostly cells cut by the border) get no box.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
from PIL import Image, ImageFilter

from unihema.config.schema import SynthConfig
from unihema.data import vocab
from unihema.data.text import language
from unihema.data.sample import QAPair
from unihema.synth import cells
from unihema.synth.cells import RED_MORPHOLOGIES, WHITE_TYPES, Patch

MASK_VALUES: Dict[int, str] = {0: "background", 1: "red blood cell", 2: "nucleus",
                               3: "cytoplasm", 4: "platelet", 5: "malaria parasite"}
DETECT_CLASSES = RED_MORPHOLOGIES + WHITE_TYPES + ("platelet", "ring form")
SEGMENT_CLASSES = tuple(MASK_VALUES[k] for k in sorted(MASK_VALUES))
#: Red cells a ring form may infect (fragments and sickle cells are too thin to show a ring).
_HOSTS = ("red blood cell", "target cell", "elliptocyte", "teardrop cell", "spherocyte")
_REF_AREA = 256 * 256


@dataclass
class CropTruth:
    """A single-cell crop: ``image`` [c, c, 3] uint8 centred on box ``box_index`` of the field."""

    image: np.ndarray
    box_index: int
    label: str
    label_set: List[str]
    attributes: Optional[Dict[str, str]]
    report: str
    qa: List[QAPair]


@dataclass
class FieldTruth:
    """A rendered field with supervision for all six tasks (see the module docstring)."""

    image: np.ndarray
    mask: np.ndarray
    instances: np.ndarray
    boxes: np.ndarray
    labels: List[str]
    box_attributes: List[Dict[str, str]]
    box_info: List[Dict[str, Any]]
    crops: List[CropTruth]
    qa: List[QAPair]
    report: str
    counts: Dict[str, int]
    meta: Dict[str, Any] = field(default_factory=dict)


def as_rng(rng_or_seed: Union[int, Sequence[int], np.random.Generator]) -> np.random.Generator:
    """A numpy Generator from a seed, a seed sequence (``[seed, split, i]``) or a Generator."""
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(rng_or_seed)


# ----------------------------------------------------------------------------- placement
def _shift(patch: Patch, cy: float, cx: float) -> Patch:
    """Move a patch drawn around the origin cell so its centre lands on ``(cy, cx)``."""
    patch.y0 += int(np.floor(cy))
    patch.x0 += int(np.floor(cx))
    return patch


def _inside_fraction(p: Patch, size: int) -> float:
    ys, xs = slice(max(0, -p.y0), max(0, size - p.y0)), slice(max(0, -p.x0), max(0, size - p.x0))
    total = p.mask.sum()
    return float(p.mask[ys, xs].sum()) / max(1, total)


def _red_mixture(rng: np.random.Generator) -> np.ndarray:
    """Morphology probabilities of one smear: mostly normal, or one dominant abnormality."""
    p = np.full(len(RED_MORPHOLOGIES), 0.01)
    if rng.random() < 0.45:
        p[0] = 0.94
    else:
        p[0] = rng.uniform(0.35, 0.6)
        p[1 + int(rng.integers(len(RED_MORPHOLOGIES) - 1))] += rng.uniform(0.3, 0.5)
    return p / p.sum()


def _place(rng, cfg: SynthConfig) -> List[Dict[str, Any]]:
    """Sample and position every object; returns records in drawing order."""
    size = cfg.size
    area = min(1.0, size * size / _REF_AREA)
    whites: List[Dict[str, Any]] = []
    if rng.random() < cfg.white_cell_prob:
        n_white = 1 + int(rng.random() < 0.3) + int(rng.random() < 0.1)
        for _ in range(n_white):
            kind = WHITE_TYPES[int(rng.integers(len(WHITE_TYPES)))]
            attrs = cells.sample_white_attributes(rng, kind)
            p = cells.draw_white_cell(rng, kind, attrs, rng.random(), rng.random())
            e = p.info["radius"] * 1.25
            if 2 * e + 2 >= size:
                continue
            for _ in range(20):
                cy, cx = rng.uniform(e + 1, size - e - 1, 2)
                if all(np.hypot(cy - o["cy"], cx - o["cx"]) > e + o["r"] + 2 for o in whites):
                    whites.append(dict(kind="white", label=kind, attrs=attrs, r=e, cy=cy, cx=cx,
                                       patch=_shift(p, cy, cx)))
                    break
    wc = np.array([[o["cy"], o["cx"], o["r"]] for o in whites]).reshape(-1, 3)

    platelets = []
    for _ in range(int(round(rng.integers(0, 9) * area))):
        p = cells.draw_platelet(rng, rng.random(), rng.random())
        cy, cx = rng.uniform(0, size, 2)
        if np.all(np.hypot(wc[:, 0] - cy, wc[:, 1] - cx) > wc[:, 2] + p.info["radius"] + 1):
            platelets.append(dict(kind="platelet", label="platelet", attrs={}, r=p.info["radius"],
                                  cy=cy, cx=cx, patch=_shift(p, cy, cx)))

    reds: List[Dict[str, Any]] = []
    mix = _red_mixture(rng)
    n_red = int(round(rng.integers(0, cfg.max_red_cells + 1) * area))
    rc = np.zeros((n_red, 3))
    for _ in range(n_red):
        morph = RED_MORPHOLOGIES[int(rng.choice(len(RED_MORPHOLOGIES), p=mix))]
        p = cells.draw_red_cell(rng, morph, rng.random(), rng.random(), rng.uniform(8.8, 10.4))
        e = p.info["radius"]
        oy, ox = p.y0, p.x0
        for _ in range(25):
            cy, cx = rng.uniform(-0.4 * e, size + 0.4 * e, 2)
            if np.any(np.hypot(wc[:, 0] - cy, wc[:, 1] - cx) < wc[:, 2] + 0.55 * e):
                continue
            k = len(reds)
            if k and np.any(np.hypot(rc[:k, 0] - cy, rc[:k, 1] - cx) < 0.72 * (rc[:k, 2] + e)):
                continue
            p.y0, p.x0 = oy, ox
            _shift(p, cy, cx)
            if _inside_fraction(p, size) < 0.3:
                continue
            rc[k] = (cy, cx, e)
            reds.append(dict(kind="red", label=morph, attrs={}, r=e, cy=cy, cx=cx, patch=p))
            break
    return reds + platelets + whites


def _paste(p: Patch, obj_id: int, canvas, sem, inst, only: Optional[int] = None) -> np.ndarray:
    """Overwrite the canvas with ``p`` where its mask is set; returns the in-image footprint.

    ``only``: restrict to pixels whose current instance is ``only`` (a parasite in its host).
    The footprint is a bool array over the clipped window, returned with ``(y0, x0)`` in
    ``p.info["window"]``.
    """
    size = canvas.shape[0]
    ya, xa = max(0, p.y0), max(0, p.x0)
    yb, xb = min(size, p.y0 + p.mask.shape[0]), min(size, p.x0 + p.mask.shape[1])
    p.info["window"] = (ya, xa)
    if yb <= ya or xb <= xa:
        return np.zeros((0, 0), bool)
    m = p.mask[ya - p.y0:yb - p.y0, xa - p.x0:xb - p.x0].copy()
    if only is not None:
        m &= inst[ya:yb, xa:xb] == only
    canvas[ya:yb, xa:xb][m] = p.rgb[ya - p.y0:yb - p.y0, xa - p.x0:xb - p.x0][m]
    sem[ya:yb, xa:xb][m] = p.sem[ya - p.y0:yb - p.y0, xa - p.x0:xb - p.x0][m]
    inst[ya:yb, xa:xb][m] = obj_id
    return m


# ----------------------------------------------------------------------------- optics
def sample_optics(rng: np.random.Generator, domain: float) -> Dict[str, Any]:
    """Per-field stain and microscope parameters; ``domain`` in [0, 1] shifts their centre.

    ``domain`` rotates the stain hue, desaturates and darkens it, warms and dims the lamp,
    strengthens the vignette, and adds blur and noise: 0 is the reference look.
    """
    d = float(np.clip(domain, 0.0, 1.0))
    return {
        "hue": float(rng.uniform(-0.025, 0.025) + 0.06 * d),  # fraction of the colour wheel
        "saturation": float(rng.uniform(0.88, 1.12) * (1 - 0.45 * d)),
        "density": float(rng.uniform(0.88, 1.12) * (1 + 0.25 * d)),
        "brightness": float(rng.uniform(0.97, 1.03) * (1 - 0.1 * d)),
        "vignette": float(rng.uniform(0.0, 0.12) + 0.3 * d),
        "gradient": [float(v) for v in rng.uniform(-0.03, 0.03, 2)],
        "tint": [float(1 + rng.uniform(-0.025, 0.025) - s * d) for s in (0.0, 0.04, 0.12)],
        "blur": float(rng.uniform(0.35, 0.8) + 1.0 * d),
        "noise": float(rng.uniform(1.0, 3.0) + 3.0 * d),
    }


def _stain_matrix(hue: float, saturation: float, density: float) -> np.ndarray:
    """Optical-density transform: hue rotation about the grey axis, saturation, density."""
    k = np.full(3, 1 / np.sqrt(3))
    th = 2 * np.pi * hue
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    rot = np.cos(th) * np.eye(3) + np.sin(th) * kx + (1 - np.cos(th)) * np.outer(k, k)
    grey = np.outer(k, k)
    return density * (grey + saturation * rot @ (np.eye(3) - grey))


def apply_optics(rgb: np.ndarray, optics: Dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Reference-colour field [H, W, 3] float -> observed uint8 image (stain, lamp, blur, noise).

    The stain acts in optical density (Beer-Lambert), so the unstained background barely moves
    while stained objects change hue and strength, as between real staining batches.
    """
    h, w, _ = rgb.shape
    od = -np.log((np.clip(rgb, 0, 255) + 1.0) / 256.0)
    m = _stain_matrix(optics["hue"], optics["saturation"], optics["density"]).astype(np.float32)
    # Explicit channel mix, not a matmul: BLAS threads would oversubscribe the worker processes.
    mixed = od[..., 0:1] * m[:, 0] + od[..., 1:2] * m[:, 1] + od[..., 2:3] * m[:, 2]
    out = 256.0 * np.exp(-mixed) - 1.0
    yy = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    gy, gx = optics["gradient"]
    lamp = optics["brightness"] * (1 - 0.5 * optics["vignette"] * (yy * yy + xx * xx))
    lamp = lamp * (1 + gy * yy + gx * xx)
    out = out * lamp[..., None] * np.asarray(optics["tint"], np.float32)
    img = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    img = img.filter(ImageFilter.GaussianBlur(optics["blur"]))
    noise = rng.standard_normal((h, w, 3), np.float32) * optics["noise"]
    noisy = np.asarray(img, np.float32) + noise
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- truth
def _field_qa(rng, labels: List[str], boxes: np.ndarray, attrs: List[Dict[str, str]],
              size: int) -> List[QAPair]:
    """Counting, presence, type, attribute and location questions, consistent with the boxes."""
    # a group term counts every member: "how many red blood cells" includes target cells and
    # "how many lymphocytes" the atypical ones
    counts = {c: sum(vocab.is_a(lab, c) for lab in labels) for c in DETECT_CLASSES}
    present = [c for c in DETECT_CLASSES if counts[c]]
    absent = [c for c in DETECT_CLASSES if not counts[c]]
    whites = [i for i, lab in enumerate(labels) if lab in WHITE_TYPES]
    qa = [language.qa_count(c, counts[c]) for c in present]
    qa.append(language.qa_count("white blood cell", len(whites)))
    for c in rng.permutation(absent)[:2]:
        qa.append(language.qa_count(str(c), 0))
    for c in rng.permutation(present)[:2]:
        qa.append(language.qa_presence(str(c), True))
    for c in rng.permutation(absent)[:2]:
        qa.append(language.qa_presence(str(c), False))
    qa.append(language.qa_presence("white blood cell", bool(whites)))
    qa.append(language.qa_presence("malaria parasite", counts["ring form"] > 0))
    if len(whites) == 1:
        i = whites[0]
        qa.append(language.qa_type("white blood cell", labels[i]))
        for name in rng.permutation(sorted(attrs[i]))[:2]:
            qa.append(language.qa_attribute(str(name), attrs[i][str(name)], "white blood cell"))
    singles = (["white blood cell"] if len(whites) == 1 else [])
    singles += [c for c in present if counts[c] == 1 and c not in WHITE_TYPES]
    for c in singles:
        i = next(k for k, lab in enumerate(labels) if vocab.is_a(lab, c))
        x0, y0, x1, y1 = boxes[i]
        where = language.location_name((x0 + x1) / 2, (y0 + y1) / 2, size, size)
        qa.append(language.qa_location(c, where))
    return qa


def _crop(image: np.ndarray, mask: np.ndarray, box: np.ndarray, side: int,
          rng: np.random.Generator, noise: float) -> np.ndarray:
    """A ``side`` x ``side`` crop centred on ``box``; larger windows are resized down.

    Parts of the window outside the field are filled with the local background colour (the
    median of the window's background pixels) plus sensor noise, so the padding blends in.
    """
    x0, y0, x1, y1 = box
    win = max(side, int(np.ceil(1.25 * max(x1 - x0, y1 - y0))))
    top = int(round((y0 + y1) / 2 - win / 2))
    left = int(round((x0 + x1) / 2 - win / 2))
    h, w = image.shape[:2]
    ya, xa, yb, xb = max(0, top), max(0, left), min(h, top + win), min(w, left + win)
    inner = (ya, xa, yb, xb) == (top, left, top + win, left + win)
    out = np.empty((win, win, 3), np.uint8)
    if not inner:
        # Background pixels in a strip along the cut sides: the lamp varies across a field.
        sub, msk = image[ya:yb, xa:xb], mask[ya:yb, xa:xb] == 0
        near = np.zeros_like(msk)
        near[:6] |= top < 0
        near[-6:] |= top + win > h
        near[:, :6] |= left < 0
        near[:, -6:] |= left + win > w
        bg = sub[msk & near]
        bg = bg if len(bg) else sub[msk]
        fill = np.median(bg, axis=0) if len(bg) else np.median(image.reshape(-1, 3), axis=0)
        pad = fill + rng.standard_normal((win, win, 3), np.float32) * noise
        out[:] = np.clip(pad + 0.5, 0, 255).astype(np.uint8)
    if yb > ya and xb > xa:
        out[ya - top:yb - top, xa - left:xb - left] = image[ya:yb, xa:xb]
    if win != side:
        out = np.asarray(Image.fromarray(out).resize((side, side), Image.BILINEAR))
    return out


def _crops(rng, image, mask, boxes, labels, attrs, info, cfg: SynthConfig,
           noise: float) -> List[CropTruth]:
    """Crops of every white cell and of up to 3 whole red cells (abnormal shapes first)."""
    whites = [i for i, lab in enumerate(labels) if lab in WHITE_TYPES]
    whole = [i for i, lab in enumerate(labels) if lab in RED_MORPHOLOGIES
             and info[i]["inside"] > 0.999 and info[i]["visible"] > 0.8]
    abnormal = [i for i in rng.permutation(whole) if labels[i] != "red blood cell"]
    normal = [i for i in rng.permutation(whole) if labels[i] == "red blood cell"]
    reds = abnormal[:2] + normal[:1]
    reds += [i for i in abnormal[2:] + normal[1:]][:3 - len(reds)]
    out = []
    for i in whites + sorted(int(i) for i in reds):
        img = _crop(image, mask, boxes[i], cfg.crop_size, rng, noise)
        if labels[i] in WHITE_TYPES:
            a = dict(attrs[i])
            qa = [language.qa_type("white blood cell", labels[i])]
            qa += [language.qa_attribute(k, v, "cell") for k, v in a.items()]
            out.append(CropTruth(img, i, labels[i], list(WHITE_TYPES), a,
                                 language.describe_cell(labels[i], a), qa))
        else:
            qa = [language.qa_type("red blood cell", labels[i])]
            out.append(CropTruth(img, i, labels[i], list(RED_MORPHOLOGIES), None,
                                 language.describe_cell(labels[i], {}), qa))
    return out


def check_config(cfg: SynthConfig) -> None:
    """Raise ``ValueError`` listing every out-of-range generator setting."""
    problems = []
    if not 32 <= cfg.size <= 4096:
        problems.append(f"size={cfg.size} (need 32..4096 pixels)")
    if not 0.0 <= cfg.domain <= 1.0:
        problems.append(f"domain={cfg.domain} (need 0..1)")
    if cfg.max_red_cells < 0:
        problems.append(f"max_red_cells={cfg.max_red_cells} (need >= 0)")
    for name in ("white_cell_prob", "parasite_prob"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            problems.append(f"{name}={getattr(cfg, name)} (need a probability in 0..1)")
    if cfg.crop_size < 16:
        problems.append(f"crop_size={cfg.crop_size} (need >= 16)")
    if cfg.workers < 0:
        problems.append(f"workers={cfg.workers} (0 = one per core, or a positive count)")
    if problems:
        raise ValueError("bad synth config: " + "; ".join(problems))


def render_field(rng_or_seed: Union[int, Sequence[int], np.random.Generator],
                 cfg: Optional[SynthConfig] = None) -> FieldTruth:
    """Render one ``cfg.size`` x ``cfg.size`` field and its truth for all six tasks.

    Deterministic: the same seed (or ``[seed, split_key, index]``) gives identical output.
    """
    cfg = cfg or SynthConfig()
    check_config(cfg)
    rng = as_rng(rng_or_seed)
    size = cfg.size
    optics = sample_optics(rng, cfg.domain)
    objects = _place(rng, cfg)

    canvas = np.empty((size, size, 3), np.float32)
    canvas[:] = np.array([236.0, 229.0, 226.0]) * rng.uniform(0.98, 1.02, 3)
    canvas += (cells.smooth_noise(rng, size, size, size / 6) * 2.5)[..., None]
    sem = np.zeros((size, size), np.uint8)
    inst = np.zeros((size, size), np.int32)
    foot = [_paste(o["patch"], j + 1, canvas, sem, inst) for j, o in enumerate(objects)]

    # Ring forms go last, into red cells that are whole and barely covered.
    n_red = sum(o["kind"] == "red" for o in objects)
    if n_red and rng.random() < cfg.parasite_prob:
        vis = np.bincount(inst.ravel(), minlength=len(objects) + 1)
        hosts = [j for j, o in enumerate(objects) if o["kind"] == "red" and o["label"] in _HOSTS
                 and vis[j + 1] >= 0.85 * o["patch"].mask.sum()]
        for j in rng.permutation(hosts)[:int(rng.integers(1, 5))]:
            host = objects[int(j)]
            off = 0.25 * host["r"] * rng.random()
            phi = rng.uniform(0, 2 * np.pi)
            cy = host["patch"].y0 + host["patch"].mask.shape[0] / 2 + off * np.sin(phi)
            cx = host["patch"].x0 + host["patch"].mask.shape[1] / 2 + off * np.cos(phi)
            p = cells.draw_ring_form(rng, cy, cx)
            ring = dict(kind="ring", label="ring form", attrs={}, r=p.info["radius"],
                        cy=cy, cx=cx, patch=p, host=int(j))
            objects.append(ring)
            foot.append(_paste(p, len(objects), canvas, sem, inst, only=int(j) + 1))

    vis = np.bincount(inst.ravel(), minlength=len(objects) + 1)
    boxes, labels, attrs, info = [], [], [], []
    lut = np.zeros(len(objects) + 1, np.int32)
    for j, (o, m) in enumerate(zip(objects, foot)):
        n_in = int(m.sum())
        tiny = o["kind"] in ("platelet", "ring")
        if n_in == 0 or vis[j + 1] < max(3 if tiny else 10, 0.2 * n_in):
            continue
        rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
        ya, xa = o["patch"].info["window"]
        boxes.append([xa + cols[0], ya + rows[0], xa + cols[-1] + 1, ya + rows[-1] + 1])
        labels.append(o["label"])
        attrs.append(dict(o["attrs"]))
        facts = {k: v for k, v in o["patch"].info.items() if k != "window"}
        facts.update(inside=n_in / max(1, int(o["patch"].mask.sum())),
                     visible=float(vis[j + 1]) / n_in)
        if "host" in o:
            facts["host"] = int(lut[o["host"] + 1]) - 1  # box index of the host (-1: no box)
        info.append(facts)
        lut[j + 1] = len(boxes)
    instances = lut[inst]
    box_arr = np.asarray(boxes, np.float32).reshape(-1, 4)

    image = apply_optics(canvas, optics, rng)
    crops = _crops(rng, image, sem, box_arr, labels, attrs, info, cfg, optics["noise"])
    qa = _field_qa(rng, labels, box_arr, attrs, size)
    counts = Counter(labels)
    ordered = {c: counts[c] for c in DETECT_CLASSES if counts[c]}
    report = language.report_field(labels, box_arr.tolist(), order=RED_MORPHOLOGIES)
    meta = {"stain": "Romanowsky (simulated)", "domain": float(cfg.domain),
            "optics": {k: (np.round(v, 4).tolist()) for k, v in optics.items()}}
    return FieldTruth(image, sem, instances, box_arr, labels, attrs, info, crops, qa, report,
                      ordered, meta)
