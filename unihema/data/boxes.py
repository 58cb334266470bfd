"""What the adapters do with source boxes that do not fit their image: one rule, named policies.

A source box is ``(x0, y0, x1, y1)`` in pixel edges. :func:`place_box` applies a
:class:`BoxPolicy`:

* an edge outside the image by at most ``policy.tolerance`` pixels (a 0-based coordinate read
  on the VOC devkit's 1-based scale, a normalised value rounded above 1) is moved onto the
  border, with a note when ``policy.note_repairs`` (``unihema data check`` lists notes);
* a *bad* box (farther outside, or empty: ``x1 <= x0`` or ``y1 <= y0`` in the source or once
  moved onto the border) is handled by ``policy.bad``:

  ``"error"`` (the default)
      a problem of its file, and the whole image is left out: dropping one box would teach
      the detector that the cell is not there. Under ``on_error="raise"`` the load stops.
  ``"drop"``
      a problem of its file, and only that box is left out; the image is kept with its other
      boxes (under ``on_error="raise"`` the load stops all the same, as for every problem).
  ``"clip"``
      never a problem: a box farther outside is clipped to the image, an empty one is left
      out, each with a note.

Two named policies cover today's adapters: :data:`FIT_BORDER` (1 px, repairs noted: the
field-of-view adapters bccd, cbc and txl_pbc, and the generic adapter) and
:data:`CLIP_ROUNDING` (2 px, repairs silent: the other detection and segmentation adapters).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

from unihema.data.catalog import DatasetAdapter

#: How far (pixels) an edge may lie outside the image and still be moved onto the border, in
#: :data:`FIT_BORDER`.
EDGE_TOLERANCE = 1.0

Box = Tuple[float, float, float, float]

#: the values of :attr:`BoxPolicy.bad`
BAD_BOXES = ("error", "drop", "clip")


@dataclass(frozen=True)
class BoxPolicy:
    """What :func:`place_box` does with a box that does not fit its image (module docstring).

    Attributes:
        bad: ``"error"``, ``"drop"`` or ``"clip"``: the fate of a box farther outside than
            ``tolerance`` or empty.
        tolerance: pixels an edge may lie outside the image and still be moved onto the
            border without counting as bad (``>= 0``).
        note_repairs: record a note for each box moved onto the border.
    """

    bad: str = "error"
    tolerance: float = EDGE_TOLERANCE
    note_repairs: bool = True

    def __post_init__(self) -> None:
        if self.bad not in BAD_BOXES:
            raise ValueError(f"BoxPolicy.bad must be one of {BAD_BOXES}, got '{self.bad}'")
        if not self.tolerance >= 0:
            raise ValueError(f"BoxPolicy.tolerance must be >= 0 pixels, got {self.tolerance}")

    @property
    def drops_image(self) -> bool:
        """Whether a bad box leaves its whole image out (``bad == "error"``)."""
        return self.bad == "error"


#: 1 px moved onto the border with a note; a bad box leaves its image out.
FIT_BORDER = BoxPolicy()
#: 2 px moved onto the border silently (rounding of normalised coordinates); a bad box
#: leaves its image out.
CLIP_ROUNDING = BoxPolicy(tolerance=2.0, note_repairs=False)


def place_box(adapter: DatasetAdapter, file: Union[str, Path], box: Sequence[float],
              width: int, height: int, what: str = "", line: Optional[int] = None,
              policy: BoxPolicy = FIT_BORDER) -> Optional[Box]:
    """``box`` placed inside the ``width`` x ``height`` image by ``policy``; ``None`` when it
    is not kept (reported as a problem, or noted under ``"clip"``). Whether ``None`` leaves
    the image out is :attr:`BoxPolicy.drops_image`.

    Args:
        box: ``(x0, y0, x1, y1)`` pixel edges as the source gives them.
        what: names the box in messages (``"object 3 'RBC'"``); messages start with it.
        line: the line of ``file`` that holds the box, when the format has lines.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    shown = [round(v, 2) for v in (x0, y0, x1, y1)]
    head = f"{what}: " if what else ""
    bad = adapter.note if policy.bad == "clip" else adapter.report
    if x1 <= x0 or y1 <= y0:
        bad(file, f"{head}empty box {shown} (need x0 < x1, y0 < y1)", line)
        return None
    t = policy.tolerance
    far = x0 < -t or y0 < -t or x1 > width + t or y1 > height + t
    if far and policy.bad != "clip":
        adapter.report(file, f"{head}box {shown} lies outside the {width}x{height} image "
                             f"(by more than {t:g} px)", line)
        return None
    fitted = (max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height)))
    if fitted[2] <= fitted[0] or fitted[3] <= fitted[1]:
        bad(file, f"{head}box {shown} lies outside the {width}x{height} image (empty once "
                  f"clipped)", line)
        return None
    if far:
        adapter.note(file, f"{head}box {shown} reaches past the {width}x{height} image by more "
                           f"than {t:g} px; clipped to it", line)
    elif fitted != (x0, y0, x1, y1) and policy.note_repairs:
        adapter.note(file, f"{head}box {shown} reaches past the {width}x{height} image by "
                           f"<= {t:g} px; moved onto the border", line)
    return fitted


def fit_box(adapter: DatasetAdapter, file: Union[str, Path], box: Sequence[float], width: int,
            height: int, what: str, line: Optional[int] = None) -> Optional[Box]:
    """:func:`place_box` under :data:`FIT_BORDER` (the generic adapter's rule); ``None`` once
    the bad box is reported (its image is then left out)."""
    return place_box(adapter, file, box, width, height, what, line, FIT_BORDER)
