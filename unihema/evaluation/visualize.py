"""Pictures of predictions: detections and segmentation masks drawn over an image."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np
from PIL import Image, ImageDraw

from unihema.data.preview import PALETTE, _font, mask_color


def _rgb(image) -> np.ndarray:
    from unihema.api.pipeline import to_rgb_array

    return to_rgb_array(image)


def draw_detections(image, objects: Sequence[Dict[str, Any]], scale: int = 2) -> Image.Image:
    """``objects``: ``[{"box": xyxy, "label": str, "score": float}]`` in image pixels."""
    arr = _rgb(image)
    pil = Image.fromarray(arr).resize((arr.shape[1] * scale, arr.shape[0] * scale),
                                      Image.BILINEAR)
    draw = ImageDraw.Draw(pil)
    font = _font(11)
    colors: Dict[str, tuple] = {}
    for o in sorted(objects, key=lambda o: o["label"] != "red blood cell"):
        c = colors.setdefault(o["label"], PALETTE[len(colors) % len(PALETTE)])
        x0, y0, x1, y1 = (v * scale for v in o["box"])
        plain = o["label"] == "red blood cell"
        draw.rectangle([x0, y0, x1, y1], outline=c, width=1 if plain else 2)
        if not plain:
            draw.text((x0 + 2, y0 + 1), f"{o['label']} {o['score']:.2f}", fill=c, font=font,
                      stroke_width=2, stroke_fill=(255, 255, 255))
    return pil


def draw_mask(image, mask: np.ndarray, classes: List[str], alpha: float = 0.5,
              scale: int = 2) -> Image.Image:
    """Blend a class-index mask ``[H, W]`` over the image, with a legend strip."""
    arr = _rgb(image).astype(np.float32)
    over = arr.copy()
    for i, name in enumerate(classes):
        if name != "background":
            over[mask == i] = mask_color(name)
    blend = ((1 - alpha) * arr + alpha * over).clip(0, 255).astype(np.uint8)
    h, w = blend.shape[:2]
    pil = Image.fromarray(blend).resize((w * scale, h * scale), Image.NEAREST)
    canvas = Image.new("RGB", (pil.width, pil.height + 20 * len(classes)), (255, 255, 255))
    canvas.paste(pil, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for i, name in enumerate(classes):
        y = pil.height + 4 + 20 * i
        draw.rectangle([6, y, 18, y + 12], fill=mask_color(name) if name != "background"
                       else (255, 255, 255), outline=(0, 0, 0))
        draw.text((24, y), name, fill=(20, 20, 20), font=_font(11))
    return canvas
