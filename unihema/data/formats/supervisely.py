"""Supervisely JSON annotations (one ``<image name>.json`` per image).

``{"size": {"height": H, "width": W}, "objects": [{"classTitle": ..., "geometryType": ...}]}``
with geometries:

* ``bitmap``: ``{"bitmap": {"data": <base64 of a zlib-compressed PNG>, "origin": [x, y]}}``;
  the PNG's alpha channel (or its only channel) marks the object, placed with its top-left
  corner at ``origin`` (column, row) in the image.
* ``polygon``: ``{"points": {"exterior": [[x, y], ...], "interior": [[[x, y], ...], ...]}}``;
  the exterior is filled, interior rings are holes.
* ``rectangle``: ``{"points": {"exterior": [[left, top], [right, bottom]]}}``, inclusive pixels.

Each object is returned as a full-image boolean mask.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import zlib
from dataclasses import dataclass, field
from typing import Any, List, NamedTuple, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from unihema.data.formats._common import PathLike, data_error, read_text, to_float, to_int


class SuperviselyObject(NamedTuple):
    class_title: str
    geometry_type: str
    mask: np.ndarray  # bool [H, W]

    @property
    def box(self) -> Tuple[float, float, float, float]:
        """Pixel-edge xyxy box of the mask (zeros when the mask is empty)."""
        ys, xs = np.nonzero(self.mask)
        if not len(xs):
            return (0.0, 0.0, 0.0, 0.0)
        return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


@dataclass
class SuperviselyAnnotation:
    width: int
    height: int
    objects: List[SuperviselyObject] = field(default_factory=list)


def _ring(points: Any, path: PathLike, where: str) -> List[Tuple[float, float]]:
    if not isinstance(points, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2
                                               for p in points):
        raise data_error(path, "expected a list of [x, y] points", field=where)
    return [(to_float(x, path, field=where), to_float(y, path, field=where)) for x, y in points]


def _bitmap(obj: dict, height: int, width: int, path: PathLike, where: str) -> np.ndarray:
    bitmap = obj.get("bitmap")
    if not isinstance(bitmap, dict) or "data" not in bitmap or "origin" not in bitmap:
        raise data_error(path, "bitmap object needs 'bitmap': {data, origin}", field=where)
    try:
        png = zlib.decompress(base64.b64decode(bitmap["data"], validate=True))
        with Image.open(io.BytesIO(png)) as img:
            img.load()
            arr = np.asarray(img)
            mode = img.mode
    except (binascii.Error, zlib.error, OSError, ValueError) as exc:
        raise data_error(path, f"bitmap data is not base64 zlib PNG ({type(exc).__name__}: "
                               f"{exc})", field=f"{where}.bitmap.data") from None
    if arr.ndim == 3:
        small = arr[:, :, -1] > 0 if mode in ("RGBA", "LA", "PA") else np.any(arr > 0, axis=2)
    else:
        small = arr > 0
    origin = bitmap["origin"]
    if not isinstance(origin, (list, tuple)) or len(origin) != 2:
        raise data_error(path, f"origin must be [x, y], got {origin!r}",
                         field=f"{where}.bitmap.origin")
    ox = to_int(origin[0], path, field=f"{where}.bitmap.origin")
    oy = to_int(origin[1], path, field=f"{where}.bitmap.origin")
    h, w = small.shape
    if ox < 0 or oy < 0 or ox + w > width or oy + h > height:
        raise data_error(path, f"bitmap {w}x{h} at origin ({ox}, {oy}) extends outside the "
                               f"{width}x{height} image", field=where)
    mask = np.zeros((height, width), dtype=bool)
    mask[oy:oy + h, ox:ox + w] = small
    return mask


def _polygon(exterior: Sequence, interior: Sequence, height: int, width: int) -> np.ndarray:
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    draw.polygon([tuple(p) for p in exterior], fill=1, outline=1)
    for hole in interior:
        if len(hole) >= 3:
            draw.polygon([tuple(p) for p in hole], fill=0, outline=0)
    return np.asarray(canvas, dtype=bool)


def read_supervisely(path: PathLike) -> SuperviselyAnnotation:
    """Parse a Supervisely annotation file into full-image object masks.

    Raises:
        DataError: missing file, malformed JSON (line named), missing ``size``, an object
            without ``classTitle``, an unsupported geometry type (point, line, graph...), a
            malformed bitmap or polygon, a bitmap extending outside the image. The message
            names the file and the object (``objects[2].bitmap.data``).
    """
    try:
        doc = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise data_error(path, f"malformed JSON ({exc.msg}, column {exc.colno})",
                         line=exc.lineno) from None
    size = doc.get("size") if isinstance(doc, dict) else None
    if not isinstance(size, dict) or "height" not in size or "width" not in size:
        raise data_error(path, "expected 'size': {height, width} at the top level",
                         field="size")
    height = to_int(size["height"], path, field="size.height")
    width = to_int(size["width"], path, field="size.width")
    objects = doc.get("objects", [])
    if not isinstance(objects, list):
        raise data_error(path, "expected a list", field="objects")
    out: List[SuperviselyObject] = []
    for i, obj in enumerate(objects):
        where = f"objects[{i}]"
        if not isinstance(obj, dict) or not obj.get("classTitle"):
            raise data_error(path, "object without 'classTitle'", field=where)
        gtype = str(obj.get("geometryType", ""))
        if gtype == "bitmap":
            mask = _bitmap(obj, height, width, path, where)
        elif gtype in ("polygon", "rectangle"):
            points = obj.get("points")
            if not isinstance(points, dict) or "exterior" not in points:
                raise data_error(path, f"{gtype} needs 'points': {{exterior, interior}}",
                                 field=where)
            ext = _ring(points["exterior"], path, f"{where}.points.exterior")
            if gtype == "rectangle":
                if len(ext) != 2:
                    raise data_error(path, f"rectangle needs 2 corner points, got {len(ext)}",
                                     field=f"{where}.points.exterior")
                (x0, y0), (x1, y1) = ext
                x0, x1 = sorted((int(round(x0)), int(round(x1))))
                y0, y1 = sorted((int(round(y0)), int(round(y1))))
                mask = np.zeros((height, width), dtype=bool)
                mask[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1] = True
            else:
                if len(ext) < 3:
                    raise data_error(path, f"polygon needs >= 3 points, got {len(ext)}",
                                     field=f"{where}.points.exterior")
                holes = [_ring(h, path, f"{where}.points.interior[{k}]")
                         for k, h in enumerate(points.get("interior") or [])]
                mask = _polygon(ext, holes, height, width)
        else:
            raise data_error(path, f"unsupported geometryType '{gtype}' (supported: bitmap, "
                                   f"polygon, rectangle)", field=where)
        out.append(SuperviselyObject(str(obj["classTitle"]), gtype, mask))
    return SuperviselyAnnotation(width, height, out)


def encode_bitmap(mask: np.ndarray) -> dict:
    """The ``bitmap`` field for a bool mask: the mask cropped to its extent, as Supervisely
    stores it (1-bit PNG, zlib, base64) with its ``origin``. Used to write example files."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        raise ValueError("cannot encode an empty mask")
    crop = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    buf = io.BytesIO()
    Image.fromarray(crop.astype(np.uint8) * 255, mode="L").convert("1").save(buf, format="PNG")
    data = base64.b64encode(zlib.compress(buf.getvalue())).decode("ascii")
    return {"data": data, "origin": [int(xs.min()), int(ys.min())]}
