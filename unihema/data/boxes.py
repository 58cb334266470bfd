"""The rule for source boxes that reach past their image, shared by the adapters.

An edge that lies outside the image by at most :data:`EDGE_TOLERANCE` pixel (a 0-based
coordinate read on the VOC devkit's 1-based scale, a normalised value rounded above 1) is moved
onto the image border and the repair is recorded as a note (``unihema data check`` lists it); a
box farther outside, or empty, is a problem of its file and the image is left out (dropping one
box would teach the detector that the cell is not there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

from unihema.data.catalog import DatasetAdapter

#: How far (pixels) an edge may lie outside the image and still be moved onto the border.
EDGE_TOLERANCE = 1.0

Box = Tuple[float, float, float, float]


def fit_box(adapter: DatasetAdapter, file: Union[str, Path], box: Sequence[float], width: int,
            height: int, what: str, line: Optional[int] = None) -> Optional[Box]:
    """The box inside the ``width`` x ``height`` image, or ``None`` once reported.

    Args:
        box: ``(x0, y0, x1, y1)`` pixel edges as the source gives them.
        what: names the box in messages (``"object 3 'RBC'"``).
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    shown = [round(v, 2) for v in (x0, y0, x1, y1)]
    if x1 <= x0 or y1 <= y0:
        adapter.report(file, f"{what}: empty box {shown} (need x0 < x1, y0 < y1)", line)
        return None
    lo = -EDGE_TOLERANCE
    if x0 < lo or y0 < lo or x1 > width + EDGE_TOLERANCE or y1 > height + EDGE_TOLERANCE:
        adapter.report(file, f"{what}: box {shown} lies outside the {width}x{height} image "
                             f"(by more than {EDGE_TOLERANCE:g} px)", line)
        return None
    fitted = (max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height)))
    if fitted != (x0, y0, x1, y1):
        adapter.note(file, f"{what}: box {shown} reaches past the {width}x{height} image by "
                           f"<= {EDGE_TOLERANCE:g} px; moved onto the border", line)
    return fitted
