"""Pascal VOC XML annotations (one ``<annotation>`` file per image).

Coordinates: the VOC devkit writes 1-based, inclusive pixel indices (``xmin = 1`` is the first
pixel column, a box covers ``xmax - xmin + 1`` columns). :func:`read_voc` converts them to the
project's pixel-edge convention, ``x0 = xmin - 1, y0 = ymin - 1, x1 = xmax, y1 = ymax``, so a
box over the whole 640x480 image, ``(1, 1, 640, 480)``, becomes ``(0, 0, 640, 480)``. Exporters
that write 0-based edges (CVAT, many scripts) are read with ``one_based=False``: the numbers are
then taken as edges unchanged. Which convention a dataset uses is the adapter's decision and is
stated in its docstring.

The reader checks structure and numbers only (every object has a name and four numeric
``bndbox`` fields); box geometry against the image is the adapter's business, so that it can
report each bad box with its file. :func:`voc_image_size` checks ``<size>`` against the image's
header: boxes were drawn on an image of the size the file states, so a disagreement means the
annotation belongs to another version of the image (resized, rotated, re-exported).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from unihema.data.formats._common import PathLike, data_error, read_text, to_float, to_int
from unihema.data.io import image_size


@dataclass(frozen=True)
class VocObject:
    """One ``<object>``: raw class name, box as float xyxy pixel edges, flags."""

    name: str
    box: Tuple[float, float, float, float]
    difficult: bool = False
    truncated: bool = False


@dataclass
class VocAnnotation:
    """One VOC file. ``width``/``height`` are ``None`` when ``<size>`` is absent or zero."""

    filename: str
    width: Optional[int]
    height: Optional[int]
    objects: List[VocObject] = field(default_factory=list)


def _flag(obj: ET.Element, tag: str, path: PathLike, where: str) -> bool:
    node = obj.find(tag)
    if node is None or node.text is None or not node.text.strip():
        return False
    value = to_int(node.text, path, field=f"{where}/<{tag}>")
    if value not in (0, 1):
        raise data_error(path, f"expected 0 or 1, got {node.text!r}", field=f"{where}/<{tag}>")
    return bool(value)


def read_voc(path: PathLike, *, one_based: bool = True) -> VocAnnotation:
    """Parse one VOC XML file.

    Args:
        path: the ``.xml`` file.
        one_based: coordinates are the devkit's 1-based inclusive indices (converted to edges
            by ``x0 = xmin - 1``); ``False`` takes them as 0-based edges unchanged.

    Returns:
        :class:`VocAnnotation`; ``filename`` is the ``<filename>`` text ('' when absent).

    Raises:
        DataError: missing file, malformed XML (with its line and column), root element not
            ``<annotation>``, an object without ``<name>`` or ``<bndbox>``, a non-numeric
            coordinate or size, a flag other than 0/1. The message names the file and the
            element (``object 3/<bndbox>/<xmax>``).
    """
    text = read_text(path)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line, col = getattr(exc, "position", (None, None))
        raise data_error(path, f"malformed XML ({exc.msg if hasattr(exc, 'msg') else exc}, "
                               f"column {col})", line=line) from None
    if root.tag != "annotation":
        raise data_error(path, f"root element is <{root.tag}>, expected <annotation>")
    filename = (root.findtext("filename") or "").strip()
    width = height = None
    size = root.find("size")
    if size is not None:
        w, h = size.findtext("width"), size.findtext("height")
        if w is not None and w.strip() and h is not None and h.strip():
            width = to_int(w, path, field="<size>/<width>") or None
            height = to_int(h, path, field="<size>/<height>") or None
    shift = 1.0 if one_based else 0.0
    objects = []
    for i, obj in enumerate(root.findall("object")):
        where = f"object {i}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise data_error(path, "missing or empty <name>", field=where)
        bb = obj.find("bndbox")
        if bb is None:
            raise data_error(path, f"object '{name}' has no <bndbox>", field=where)
        coords = []
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            raw = bb.findtext(tag)
            if raw is None:
                raise data_error(path, "missing", field=f"{where}/<bndbox>/<{tag}>")
            coords.append(to_float(raw.strip(), path, field=f"{where}/<bndbox>/<{tag}>"))
        x0, y0, x1, y1 = coords
        box = (x0 - shift, y0 - shift, x1, y1)
        objects.append(VocObject(name, box, _flag(obj, "difficult", path, where),
                                 _flag(obj, "truncated", path, where)))
    return VocAnnotation(filename, width, height, objects)


def voc_image_size(ann: VocAnnotation, path: PathLike, image: PathLike) -> Tuple[int, int]:
    """``(width, height)`` of ``image``, read from its header only, checked against the
    ``<size>`` of its annotation ``ann`` (read from ``path``); a file without ``<size>`` (or
    with a zero one) takes the image's size.

    Raises:
        DataError: ``<size>`` disagrees with the image (naming both files and both sizes), or
            the image cannot be read.
    """
    width, height = image_size(image)
    if ann.width is not None and ann.height is not None and (ann.width, ann.height) != (
            width, height):
        raise data_error(path, f"says {ann.width}x{ann.height} but the image {image} is "
                               f"{width}x{height}; the boxes were drawn on another size of the "
                               f"image: fix <size> or use the matching image", field="<size>")
    return width, height
