"""Helpers that write tiny example datasets in their native layouts (``write_example``).

Every adapter's ``write_example(root)`` builds a few small generated images (64-200 px) with
the source's real file names, folder structure and annotation format, so that a user sees the
layout an adapter expects (``unihema data example KEY --out DIR``) and the contract test can
load every adapter without the real data. The images are smear-like drawings, not data: pale
background, discs coloured by cell kind at the given boxes.

Conventions: ``boxes`` are pixel-edge ``(x0, y0, x1, y1)``; ``labels`` are any text, coloured
by a keyword (``red``/``rbc``/``erythro`` red, ``platelet``/``plt`` small purple, white-cell
and parasite names dark purple); files are written with parent folders created.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw

PathLike = Union[str, Path]
Box = Tuple[float, float, float, float]

_BACKGROUND = (236, 222, 226)


def _colour(label: Optional[str]) -> Tuple[Tuple[int, int, int], bool]:
    """(fill colour, draw a nucleus) for a label keyword."""
    s = (label or "").lower()
    if any(k in s for k in ("platelet", "plt", "thromb")):
        return (150, 90, 170), False
    if any(k in s for k in ("rbc", "red", "erythro", "cyte", "sickle", "normal", "target")) \
            and "leuko" not in s:
        return (214, 120, 130), False
    return (200, 170, 210), True


def _path(path: PathLike) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def smear_image(width: int, height: int, boxes: Sequence[Box] = (),
                labels: Optional[Sequence[str]] = None, seed: int = 0) -> np.ndarray:
    """A smear-like ``uint8 [height, width, 3]`` image with an ellipse in each box."""
    rng = np.random.default_rng(seed)
    arr = np.empty((height, width, 3), dtype=np.float32)
    arr[:] = _BACKGROUND
    arr += rng.normal(0, 4, size=arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for i, box in enumerate(boxes):
        label = labels[i] if labels is not None else None
        fill, nucleus = _colour(label)
        x0, y0, x1, y1 = (float(v) for v in box)
        draw.ellipse([x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)], fill=fill)
        if nucleus:
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            rx, ry = (x1 - x0) / 4, (y1 - y0) / 4
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=(90, 40, 120))
    return np.asarray(img)


def cell_crop(size: int = 64, label: Optional[str] = None, seed: int = 0,
              height: Optional[int] = None) -> np.ndarray:
    """A single-cell crop ``uint8 [height or size, size, 3]``: one cell in the middle."""
    h = height or size
    m = max(2, size // 6)
    return smear_image(size, h, [(m, m * h / size, size - m, h - m * h / size)], [label or "wbc"],
                       seed)


def save_image(arr: np.ndarray, path: PathLike) -> Path:
    """Save an RGB or gray array; the format follows the suffix (jpg, png, bmp, tif)."""
    p = _path(path)
    img = Image.fromarray(np.asarray(arr, dtype=np.uint8))
    suffix = p.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        img.save(p, format="JPEG", quality=90)
    elif suffix in (".tif", ".tiff"):
        img.save(p, format="TIFF")
    else:
        img.save(p)
    return p


def write_smear(path: PathLike, width: int, height: int, boxes: Sequence[Box] = (),
                labels: Optional[Sequence[str]] = None, seed: int = 0) -> Path:
    """:func:`smear_image` saved to ``path``."""
    return save_image(smear_image(width, height, boxes, labels, seed), path)


def write_crop(path: PathLike, size: int = 64, label: Optional[str] = None,
               seed: int = 0) -> Path:
    """:func:`cell_crop` saved to ``path``."""
    return save_image(cell_crop(size, label, seed), path)


def ellipse_mask(height: int, width: int, boxes: Sequence[Box], values: Sequence[int],
                 nucleus_value: Optional[int] = None) -> np.ndarray:
    """``uint8 [height, width]``: 0, an ellipse of ``values[i]`` in each box and, when
    ``nucleus_value`` is given, a smaller inner ellipse of it (nucleus in cytoplasm)."""
    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    for box, value in zip(boxes, values):
        x0, y0, x1, y1 = (float(v) for v in box)
        draw.ellipse([x0, y0, x1 - 1, y1 - 1], fill=int(value))
        if nucleus_value is not None:
            cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 4, (y1 - y0) / 4
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=int(nucleus_value))
    return np.asarray(img)


def write_mask(path: PathLike, mask: np.ndarray) -> Path:
    """Save an integer mask losslessly (8-bit, or 16-bit PNG when values exceed 255)."""
    p = _path(path)
    mask = np.asarray(mask)
    if mask.dtype == bool:
        mask = mask.astype(np.uint8) * 255
    if mask.max(initial=0) > 255:
        Image.fromarray(mask.astype(np.uint16)).save(p)
    else:
        Image.fromarray(mask.astype(np.uint8), mode="L").save(p)
    return p


def write_voc(path: PathLike, filename: str, width: int, height: int,
              objects: Iterable[Tuple[str, Sequence[float]]], folder: str = "JPEGImages",
              truncated: Optional[Sequence[int]] = None) -> Path:
    """A Pascal VOC XML file; ``objects`` are ``(name, (xmin, ymin, xmax, ymax))`` written as
    given (the caller chooses 1-based indices or edges, as the source does)."""
    lines = ["<annotation>", f"\t<folder>{folder}</folder>", f"\t<filename>{filename}</filename>",
             "\t<source>", "\t\t<database>Unknown</database>", "\t</source>",
             "\t<size>", f"\t\t<width>{width}</width>", f"\t\t<height>{height}</height>",
             "\t\t<depth>3</depth>", "\t</size>", "\t<segmented>0</segmented>"]
    for i, (name, box) in enumerate(objects):
        tr = truncated[i] if truncated is not None else 0
        lines += ["\t<object>", f"\t\t<name>{name}</name>", "\t\t<pose>Unspecified</pose>",
                  f"\t\t<truncated>{tr}</truncated>", "\t\t<difficult>0</difficult>",
                  "\t\t<bndbox>"]
        for tag, v in zip(("xmin", "ymin", "xmax", "ymax"), box):
            lines.append(f"\t\t\t<{tag}>{v:g}</{tag}>" if isinstance(v, float)
                         else f"\t\t\t<{tag}>{v}</{tag}>")
        lines += ["\t\t</bndbox>", "\t</object>"]
    lines.append("</annotation>")
    p = _path(path)
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def write_yolo(path: PathLike, rows: Iterable[Sequence[float]]) -> Path:
    """A YOLO label file; each row ``(cls, cx, cy, w, h, *attributes)`` (normalised)."""
    out = []
    for row in rows:
        cls, cx, cy, w, h, *attrs = row
        out.append(" ".join([str(int(cls))] + [f"{float(v):.6f}" for v in (cx, cy, w, h)]
                            + [str(int(a)) for a in attrs]))
    p = _path(path)
    p.write_text("\n".join(out) + ("\n" if out else ""), encoding="utf-8")
    return p


def yolo_row(cls: int, box: Box, width: int, height: int, *attributes: int) -> List[float]:
    """``(cls, cx, cy, w, h, *attributes)`` of a pixel box, for :func:`write_yolo`."""
    x0, y0, x1, y1 = box
    return [cls, (x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width,
            (y1 - y0) / height, *attributes]


def write_points(path: PathLike, points: Iterable[Sequence[object]], sep: str = " ") -> Path:
    """One point a line: ``x y`` or ``x y class``."""
    p = _path(path)
    lines = [sep.join(str(v) for v in pt) for pt in points]
    p.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    return p


def write_csv(path: PathLike, header: Sequence[str], rows: Iterable[Sequence[object]],
              line_end: str = "\n") -> Path:
    """A CSV file with a header (``line_end="\\r\\n"`` for Windows-written sources)."""
    p = _path(path)
    with open(p, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator=line_end)
        w.writerow(header)
        w.writerows(rows)
    return p


def write_json(path: PathLike, doc: object) -> Path:
    p = _path(path)
    p.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return p


def write_coco(path: PathLike, images: Sequence[Mapping], annotations: Sequence[Mapping],
               categories: Sequence[Mapping]) -> Path:
    """A COCO JSON file (``images``/``annotations``/``categories`` written as given)."""
    return write_json(path, {"images": list(images), "annotations": list(annotations),
                             "categories": list(categories)})


def layout_boxes(width: int, height: int, n: int, size: int = 24, seed: int = 0) -> List[Box]:
    """``n`` non-overlapping square boxes of side ``size`` on a grid inside the image."""
    cols = max(1, width // (size + 4))
    rows = max(1, height // (size + 4))
    if n > cols * rows:
        raise ValueError(f"{n} boxes of {size}px do not fit in {width}x{height}")
    rng = np.random.default_rng(seed)
    cells = rng.permutation(cols * rows)[:n]
    out = []
    for c in sorted(int(v) for v in cells):
        r, q = divmod(c, cols)
        out.append((float(q * (size + 4) + 2), float(r * (size + 4) + 2),
                    float(q * (size + 4) + 2 + size), float(r * (size + 4) + 2 + size)))
    return out
