"""The BBBC JSON format (BBBC041 ``training.json`` / ``test.json``).

A JSON list of images::

    [{"image": {"checksum": ..., "pathname": "/images/<name>.png",
                "shape": {"r": 1200, "c": 1600, "channels": 3}},
      "objects": [{"bounding_box": {"minimum": {"r": 57, "c": 1040},
                                    "maximum": {"r": 164, "c": 1147}},
                   "category": "red blood cell"}, ...]}, ...]

``r`` is the row, ``c`` the column. Boxes become xyxy ``(min.c, min.r, max.c, max.r)``, taken
as pixel edges unchanged. ``pathname`` is returned as written (usually with a leading ``/``
relative to the dataset root); the adapter resolves it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import List, NamedTuple, Tuple

from unihema.data.formats._common import PathLike, data_error, read_text, to_float, to_int


class BBBCObject(NamedTuple):
    category: str
    box: Tuple[float, float, float, float]


@dataclass
class BBBCImage:
    pathname: str
    height: int
    width: int
    objects: List[BBBCObject] = field(default_factory=list)


def _get(d: object, key: str, path: PathLike, where: str):
    if not isinstance(d, dict) or key not in d:
        keys = sorted(d) if isinstance(d, dict) else type(d).__name__
        raise data_error(path, f"missing key '{key}' (found {keys})", field=where)
    return d[key]


def read_bbbc_json(path: PathLike) -> List[BBBCImage]:
    """Parse a BBBC JSON file.

    Raises:
        DataError: missing file, malformed JSON (line named), not a list, an entry or object
            missing a key (``[4].objects[2].bounding_box.maximum.c``), a non-numeric value.
    """
    try:
        doc = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise data_error(path, f"malformed JSON ({exc.msg}, column {exc.colno})",
                         line=exc.lineno) from None
    if not isinstance(doc, list):
        raise data_error(path, f"expected a JSON list of images, got {type(doc).__name__}")
    out: List[BBBCImage] = []
    for i, entry in enumerate(doc):
        where = f"[{i}]"
        image = _get(entry, "image", path, where)
        shape = _get(image, "shape", path, f"{where}.image")
        height = to_int(_get(shape, "r", path, f"{where}.image.shape"), path,
                        field=f"{where}.image.shape.r")
        width = to_int(_get(shape, "c", path, f"{where}.image.shape"), path,
                       field=f"{where}.image.shape.c")
        objects = []
        for k, obj in enumerate(_get(entry, "objects", path, where)):
            ow = f"{where}.objects[{k}]"
            bb = _get(obj, "bounding_box", path, ow)
            lo = _get(bb, "minimum", path, f"{ow}.bounding_box")
            hi = _get(bb, "maximum", path, f"{ow}.bounding_box")
            vals = [to_float(_get(d, key, path, f"{ow}.bounding_box.{name}"), path,
                             field=f"{ow}.bounding_box.{name}.{key}")
                    for d, name, key in ((lo, "minimum", "c"), (lo, "minimum", "r"),
                                         (hi, "maximum", "c"), (hi, "maximum", "r"))]
            category = str(_get(obj, "category", path, ow)).strip()
            objects.append(BBBCObject(category, tuple(vals)))
        pathname = str(_get(image, "pathname", path, f"{where}.image"))
        out.append(BBBCImage(pathname, height, width, objects))
    return out
