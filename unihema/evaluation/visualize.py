"""Pictures of predictions: detections and segmentation masks drawn over an image.

The picture has the input's size (``scale`` times it), its longest side capped at
:data:`OVERLAY_MAX_SIDE` pixels (an 8000 x 6000 field is drawn at 4096 x 3072), with a legend
strip below whose swatches are the colours drawn.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np
from PIL import Image, ImageDraw

from unihema.data.preview import PALETTE, _font, mask_color

#: Longest side of a drawn overlay, in pixels.
OVERLAY_MAX_SIDE = 4096


def _rgb(image) -> np.ndarray:
    from unihema.pipeline.processing import to_rgb_array

    return to_rgb_array(image)


def overlay_scale(height: int, width: int, scale: float = 1.0,
                  max_side: int = OVERLAY_MAX_SIDE) -> float:
    """The factor an overlay of a ``height`` x ``width`` image is drawn at: ``scale``,
    lowered so the longest side is at most ``max_side``."""
    return min(float(scale), max_side / max(height, width, 1))


def _legend(canvas_width: int, entries: Sequence[tuple]) -> Image.Image:
    """A white strip with one ``(colour, text)`` swatch per line."""
    strip = Image.new("RGB", (max(canvas_width, 160), 4 + 20 * len(entries)), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for i, (colour, text) in enumerate(entries):
        y = 4 + 20 * i
        draw.rectangle([6, y, 18, y + 12], fill=tuple(int(c) for c in colour),
                       outline=(0, 0, 0))
        draw.text((24, y), text, fill=(20, 20, 20), font=_font(11))
    return strip


def _stack(picture: Image.Image, legend: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", (max(picture.width, legend.width),
                               picture.height + legend.height), (255, 255, 255))
    canvas.paste(picture, (0, 0))
    canvas.paste(legend, (0, picture.height))
    return canvas


def draw_detections(image, objects: Sequence[Dict[str, Any]], scale: float = 1.0,
                    legend: bool = True, max_side: int = OVERLAY_MAX_SIDE) -> Image.Image:
    """``objects``: ``[{"box": xyxy, "label": str, "score": float}]`` in image pixels; the
    legend lists each label in its box colour with its count."""
    arr = _rgb(image)
    f = overlay_scale(arr.shape[0], arr.shape[1], scale, max_side)
    pil = Image.fromarray(arr)
    if f != 1.0:
        pil = pil.resize((max(1, round(arr.shape[1] * f)), max(1, round(arr.shape[0] * f))),
                         Image.BILINEAR)
    draw = ImageDraw.Draw(pil)
    font = _font(11)
    colors: Dict[str, tuple] = {}
    counts: Dict[str, int] = {}
    for o in objects:  # colours in order of first appearance
        colors.setdefault(o["label"], PALETTE[len(colors) % len(PALETTE)])
        counts[o["label"]] = counts.get(o["label"], 0) + 1
    for o in sorted(objects, key=lambda o: o["label"] != "red blood cell"):
        c = colors[o["label"]]
        x0, y0, x1, y1 = (v * f for v in o["box"])
        plain = o["label"] == "red blood cell"
        draw.rectangle([x0, y0, x1, y1], outline=c, width=1 if plain else 2)
        if not plain:
            draw.text((x0 + 2, y0 + 1), f"{o['label']} {o['score']:.2f}", fill=c, font=font,
                      stroke_width=2, stroke_fill=(255, 255, 255))
    if not legend:
        return pil
    return _stack(pil, _legend(pil.width, [(c, f"{n} ({counts[n]})")
                                           for n, c in colors.items()]))


def draw_mask(image, mask: np.ndarray, classes: List[str], alpha: float = 0.5,
              scale: float = 1.0, max_side: int = OVERLAY_MAX_SIDE) -> Image.Image:
    """Blend a class-index mask ``[H, W]`` over the image, with a legend strip whose swatch
    of each class is the mean colour drawn over its pixels (its colour blended over the
    image's mean colour where it has none; background is left undrawn)."""
    arr = _rgb(image)
    f = overlay_scale(arr.shape[0], arr.shape[1], scale, max_side)
    if f < 1.0:  # blend at the output size: a full-size float copy of a huge image is GBs
        size = (max(1, round(arr.shape[1] * f)), max(1, round(arr.shape[0] * f)))
        arr = np.asarray(Image.fromarray(arr).resize(size, Image.BILINEAR))
        mask = np.asarray(Image.fromarray(mask.astype(np.int32)).resize(size, Image.NEAREST))
        f = 1.0
    img = arr.astype(np.float32)
    blend = img.copy()
    base = img.reshape(-1, 3).mean(0)
    swatches = []
    for i, name in enumerate(classes):
        where = mask == i
        if name == "background":
            swatches.append((base, name))
            continue
        colour = np.asarray(mask_color(name), np.float32)
        blend[where] = (1 - alpha) * img[where] + alpha * colour
        drawn = blend[where].mean(0) if where.any() else (1 - alpha) * base + alpha * colour
        swatches.append((drawn, name))
    pil = Image.fromarray(blend.clip(0, 255).astype(np.uint8))
    if f != 1.0:
        pil = pil.resize((round(pil.width * f), round(pil.height * f)), Image.NEAREST)
    return _stack(pil, _legend(pil.width, swatches))
