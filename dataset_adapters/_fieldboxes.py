"""Box handling shared by the field-of-view detection adapters (bccd, cbc, txl_pbc).

One rule for boxes that reach past the image (:func:`unihema.data.boxes.fit_box`, which the
generic adapter applies too), stated in each adapter's docstring: an edge that lies outside the
image by at most :data:`EDGE_TOLERANCE` pixel (a 0-based coordinate read on the VOC devkit's
1-based scale, a normalised YOLO value rounded above 1) is moved onto the image border and the
repair is recorded as a note (``unihema data check`` lists it); a box farther outside, or
empty, is a problem of its file and the image is left out (dropping one box would teach the
detector that the cell is not there).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence, Union

from unihema.data.boxes import EDGE_TOLERANCE, Box, fit_box
from unihema.data.catalog import DatasetAdapter

__all__ = ["EDGE_TOLERANCE", "Box", "fit_box", "tiny_boxes", "report_reader_error"]


def tiny_boxes(boxes: Sequence[Box], min_side: float = 2.0) -> List[int]:
    """Indices of boxes with a side shorter than ``min_side`` pixels (kept, but suspicious)."""
    return [i for i, (x0, y0, x1, y1) in enumerate(boxes)
            if x1 - x0 < min_side or y1 - y0 < min_side]


def report_reader_error(adapter: DatasetAdapter, file: Union[str, Path],
                        exc: Exception) -> None:
    """Report a format reader's :class:`DataError` (``<file>[:<line>]: <reason>``) as a problem
    of ``file``, keeping its line number and without repeating the file name
    (:meth:`DatasetAdapter.report_error`)."""
    adapter.report_error(file, exc)
