"""``unihema data preview``: a grid of samples with their supervision drawn on top.

Each tile shows the image with the semantic mask blended in (one colour per class), boxes
outlined in their class colour with the class name, and a caption with the sample id, the
image label and, for single-cell crops, the attributes. A legend row lists the colours.
"""

from __future__ import annotations

import colorsys
import hashlib
import textwrap
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from unihema.data import io
from unihema.data.sample import UnifiedSample

Color = Tuple[int, int, int]

#: Fixed colours for the most common classes, so previews look the same from run to run.
_FIXED: Dict[str, Color] = {
    "background": (0, 0, 0),
    "red blood cell": (230, 60, 60),
    "white blood cell": (60, 90, 230),
    "nucleus": (110, 40, 200),
    "cytoplasm": (60, 170, 230),
    "platelet": (240, 180, 30),
    "malaria parasite": (30, 200, 60),
    "ring form": (30, 200, 60),
}


def class_color(name: str) -> Color:
    """A stable, saturated colour for a class name."""
    if name in _FIXED:
        return _FIXED[name]
    h = int(hashlib.md5(name.encode()).hexdigest()[:6], 16) / 0xFFFFFF
    r, g, b = colorsys.hsv_to_rgb(h, 0.75, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def render_sample(sample: UnifiedSample, tile: int = 256, alpha: float = 0.45) -> Image.Image:
    """One tile: image (+ mask blend, boxes, labels) resized to fit ``tile`` x ``tile``."""
    img = io.read_image(sample.image_path).astype(np.float32)
    if sample.mask_path is not None:
        values = sample.mask_values or {}
        classes = sorted(set(values.values()))
        mask = io.read_mask(sample.mask_path, values, classes)
        over = img.copy()
        for i, name in enumerate(classes):
            if name == "background":
                continue
            over[mask == i] = class_color(name)
        img = (1 - alpha) * img + alpha * over
    scale = tile / max(sample.width, sample.height)
    w, h = max(1, round(sample.width * scale)), max(1, round(sample.height * scale))
    pil = Image.fromarray(img.clip(0, 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
    canvas = Image.new("RGB", (tile, tile), (255, 255, 255))
    canvas.paste(pil, (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = _font(10)
    if sample.boxes is not None:
        for box, name in zip(sample.boxes.tolist(), sample.box_labels or []):
            x0, y0, x1, y1 = (v * scale for v in box)
            color = class_color(name)
            draw.rectangle([x0, y0, x1, y1], outline=color, width=2)
            if name != "red blood cell":  # dozens of plain red cells would bury the picture
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
    caption_h = 84
    rows = (len(samples) + cols - 1) // cols
    classes: Dict[str, None] = {}
    for s in samples:
        for name in list(s.box_labels or []) + list((s.mask_values or {}).values()):
            classes.setdefault(name)
    classes.pop("background", None)
    legend_h = 18 * ((len(classes) + 3) // 4) + 10
    grid = Image.new("RGB", (cols * tile, rows * (tile + caption_h) + legend_h), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    font = _font(11)
    for k, s in enumerate(samples):
        x, y = (k % cols) * tile, (k // cols) * (tile + caption_h)
        grid.paste(render_sample(s, tile), (x, y))
        for j, line in enumerate(_caption(s, tile // 6)):
            draw.text((x + 4, y + tile + 2 + 12 * j), line, fill=(20, 20, 20), font=font)
    y0 = rows * (tile + caption_h) + 4
    for k, name in enumerate(classes):
        x, y = 6 + (k % 4) * (cols * tile // 4), y0 + 18 * (k // 4)
        draw.rectangle([x, y + 2, x + 12, y + 14], fill=class_color(name))
        draw.text((x + 18, y + 2), name, fill=(20, 20, 20), font=font)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    grid.save(tmp, format="PNG")
    tmp.replace(out)
    return out


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
