"""Point labels: one cell centre a line, ``x y [class]``, and boxes around them.

Fields are separated by whitespace or commas. Blank lines and ``#`` comments are skipped; an
empty file means "annotated, no cell". Coordinates are pixel positions (``x`` column, ``y``
row, as the sources write them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from unihema.data.formats._common import PathLike, data_error, read_text, to_float

_SEP = re.compile(r"[\s,;]+")


@dataclass(frozen=True)
class Point:
    """A labelled point; ``cls`` is the raw class text (``None`` for centroid-only files)."""

    x: float
    y: float
    cls: Optional[str] = None
    line: int = 0


def read_points(path: PathLike, with_class: bool) -> List[Point]:
    """Parse a point file: ``x y class`` lines (``with_class``) or ``x y`` lines.

    Raises:
        DataError: missing file, a line with the wrong number of fields, a non-numeric
            coordinate (file and line named).
    """
    expected = 3 if with_class else 2
    out: List[Point] = []
    for lineno, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p for p in _SEP.split(line) if p]
        if len(parts) != expected:
            raise data_error(path, f"expected {expected} fields "
                                   f"({'x y class' if with_class else 'x y'}), got "
                                   f"{len(parts)}: {line!r}", line=lineno)
        x = to_float(parts[0], path, line=lineno, field="x")
        y = to_float(parts[1], path, line=lineno, field="y")
        out.append(Point(x, y, parts[2] if with_class else None, lineno))
    return out


def points_to_boxes(points: Sequence[Point], box_size: float, width: int, height: int,
                    path: PathLike = "<points>") -> np.ndarray:
    """Square boxes of side ``box_size`` centred on the points, clipped to the image.

    Returns:
        float32 ``[N, 4]`` xyxy pixel edges (``[0, 4]`` for no points).

    Raises:
        DataError: a point outside the ``width`` x ``height`` image (file and line named), or
            ``box_size <= 0``.
    """
    if box_size <= 0:
        raise ValueError(f"box_size must be > 0, got {box_size}")
    out = np.zeros((len(points), 4), dtype=np.float32)
    half = box_size / 2.0
    for i, p in enumerate(points):
        if not (0 <= p.x <= width and 0 <= p.y <= height):
            raise data_error(path, f"point ({p.x:g}, {p.y:g}) lies outside the "
                                   f"{width}x{height} image", line=p.line or None)
        out[i] = (max(0.0, p.x - half), max(0.0, p.y - half),
                  min(float(width), p.x + half), min(float(height), p.y + half))
    return out
