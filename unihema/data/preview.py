"""``unihema data preview``: a grid of samples with their supervision drawn on top.

Each tile shows the image with the semantic mask blended in (one colour per class), boxes
outlined in their class colour with the class name, and a caption with the sample id, the
image label and, for single-cell crops, the attributes. A legend lists box colours (outlines)
and mask colours (filled squares).
"""

from __future__ import annotations

import colorsys
import hashlib
import textwrap
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from unihema.data import io
from unihema.data.sample import UnifiedSample
from unihema.utils import atomic_save

Color = Tuple[int, int, int]

#: Mask colours: chosen to contrast with stained cells (a red overlay on red cells shows nothing).
MASK_COLORS: Dict[str, Color] = {
    "red blood cell": (250, 225, 50),
    "nucleus": (125, 40, 230),
    "cytoplasm": (40, 200, 235),
    "cell": (40, 200, 235),
    "white blood cell": (40, 200, 235),
    "platelet": (255, 130, 0),
    "malaria parasite": (0, 210, 90),
}

#: Box colours, assigned to classes in order of first appearance in a grid (tab20 without its
#: pale half, so every class stays readable on a light background).
PALETTE: Tuple[Color, ...] = (
    (31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (23, 190, 207), (188, 189, 34), (127, 127, 127),
    (0, 0, 128), (128, 0, 0), (0, 128, 128), (128, 128, 0), (75, 0, 130), (255, 0, 255),
    (0, 100, 0), (205, 92, 92), (70, 130, 180), (210, 105, 30),
)


def class_color(name: str, index: Optional[int] = None) -> Color:
    """Box colour of a class: ``PALETTE[index]`` when given, else a stable hashed colour."""
    if index is not None:
        return PALETTE[index % len(PALETTE)]
    h = int(hashlib.md5(name.encode()).hexdigest()[:6], 16) / 0xFFFFFF
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 0.8)
    return int(r * 255), int(g * 255), int(b * 255)


def mask_color(name: str) -> Color:
    return MASK_COLORS.get(name) or class_color(name)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def render_sample(
    sample: UnifiedSample,
    tile: int = 256,
    alpha: float = 0.4,
    colors: Optional[Dict[str, Color]] = None,
) -> Image.Image:
    """One tile: image (+ mask blend, boxes, labels) resized to fit ``tile`` x ``tile``.

    ``colors`` maps box classes to colours (see :data:`PALETTE`); unknown classes get a hashed
    colour. Plain red blood cells get thin unlabelled boxes so dozens of them do not bury the
    rarer classes.
    """
    colors = colors or {}
    img = io.read_image(sample.image_path).astype(np.float32)
    if sample.mask_path is not None:
        values = sample.mask_values or {}
        classes = sorted(set(values.values()))
        mask = io.read_mask(sample.mask_path, values, classes)
        over = img.copy()
        for i, name in enumerate(classes):
            if name != "background":
                over[mask == i] = mask_color(name)
        img = (1 - alpha) * img + alpha * over
    scale = tile / max(sample.width, sample.height)
    w, h = max(1, round(sample.width * scale)), max(1, round(sample.height * scale))
    pil = Image.fromarray(img.clip(0, 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
    canvas = Image.new("RGB", (tile, tile), (255, 255, 255))
    canvas.paste(pil, (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = _font(10)
    if sample.boxes is not None:
        order = sorted(range(sample.num_boxes),
                       key=lambda i: (sample.box_labels or [])[i] != "red blood cell")
        for i in order:
            name = (sample.box_labels or [])[i]
            x0, y0, x1, y1 = (v * scale for v in sample.boxes[i].tolist())
            color = colors.get(name) or class_color(name)
            plain = name == "red blood cell"
            draw.rectangle([x0, y0, x1, y1], outline=color, width=1 if plain else 2)
            if not plain:
                draw.text((x0 + 2, y0 + 1), name, fill=color, font=font,
                          stroke_width=2, stroke_fill=(255, 255, 255))
    return canvas


def _caption(sample: UnifiedSample, width_chars: int) -> List[str]:
    lines = [f"{sample.split}/{sample.sample_id}"]
    if sample.label is not None:
        lines.append(f"label: {sample.label}")
    if sample.attributes:
        attrs = ", ".join(f"{k}={v}" for k, v in sample.attributes.items())
        lines.extend(textwrap.wrap(attrs, width_chars)[:4])
    elif sample.boxes is not None:
        counts = sample.counts()
        lines.extend(textwrap.wrap(", ".join(f"{k} {v}" for k, v in counts.items()) or
                                   "no objects", width_chars)[:3])
    if sample.qa:
        q = sample.qa[0]
        lines.extend(textwrap.wrap(f"Q: {q.question} A: {q.answer}", width_chars)[:2])
    return lines


def preview_grid(
    samples: Sequence[UnifiedSample],
    out: str | Path,
    *,
    cols: int = 4,
    tile: int = 256,
) -> Path:
    """Draw ``samples`` into a grid PNG at ``out`` (written atomically); returns the path."""
    if not samples:
        raise ValueError("nothing to preview: the selection holds no samples")
    caption_h = 112
    rows = (len(samples) + cols - 1) // cols
    box_classes: Dict[str, None] = {}
    mask_classes: Dict[str, None] = {}
    for s in samples:
        for name in s.box_labels or []:
            box_classes.setdefault(name)
        for name in (s.mask_values or {}).values():
            mask_classes.setdefault(name)
    mask_classes.pop("background", None)
    colors = {name: class_color(name, i) for i, name in enumerate(box_classes)}
    legend = [("box", n, colors[n]) for n in box_classes]
    legend += [("mask", n, mask_color(n)) for n in mask_classes]
    per_row = 4
    legend_h = 18 * ((len(legend) + per_row - 1) // per_row) + 10
    grid = Image.new("RGB", (cols * tile, rows * (tile + caption_h) + legend_h), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    font = _font(11)
    for k, s in enumerate(samples):
        x, y = (k % cols) * tile, (k // cols) * (tile + caption_h)
        grid.paste(render_sample(s, tile, colors=colors), (x, y))
        for j, line in enumerate(_caption(s, tile // 6)[: caption_h // 12]):
            draw.text((x + 4, y + tile + 2 + 12 * j), line, fill=(20, 20, 20), font=font)
    y0 = rows * (tile + caption_h) + 4
    for k, (kind, name, color) in enumerate(legend):
        x, y = 6 + (k % per_row) * (cols * tile // per_row), y0 + 18 * (k // per_row)
        if kind == "box":
            draw.rectangle([x, y + 2, x + 12, y + 14], outline=color, width=2)
        else:
            draw.rectangle([x, y + 2, x + 12, y + 14], fill=color)
        draw.text((x + 18, y + 2), f"{name} ({kind})", fill=(20, 20, 20), font=font)
    return atomic_save(out, lambda tmp: grid.save(tmp, format="PNG"))


def pick_samples(samples: Sequence[UnifiedSample], n: int, seed: int = 0) -> List[UnifiedSample]:
    """``n`` samples, mixing field images and crops when both exist, reproducibly."""
    rng = np.random.default_rng(seed)
    kinds: Dict[str, List[UnifiedSample]] = {}
    for s in samples:
        kinds.setdefault(str(s.meta.get("kind", "image")), []).append(s)
    picked: List[UnifiedSample] = []
    groups = [list(rng.permutation(len(g))) for g in kinds.values()]
    members = list(kinds.values())
    while len(picked) < min(n, len(samples)):
        for g, order in zip(members, groups):
            if order and len(picked) < n:
                picked.append(g[order.pop(0)])
    return picked
