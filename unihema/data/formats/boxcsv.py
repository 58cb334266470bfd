"""Detection CSV tables: one box a row, ``image, xmin, ymin, xmax, ymax, label``.

The layout of the common detection exports: TensorFlow object-detection CSV
(``filename,width,height,class,xmin,ymin,xmax,ymax``), Roboflow's CSV, many Kaggle sets. Column
names are the caller's (:data:`BOX_COLUMNS` gives the roles and their default names); other
columns are ignored. Coordinates are pixel edges (``xmin = 0`` is the left border) or values
normalised by the image width and height, as the caller declares; the reader checks that the
file's values fit the declaration (pixels whose every value is <= 1, normalised values above 1
in every box: the file as a whole is an error, naming the first such line).

A row whose four coordinates and label are all empty lists its image without any box (an
image without cells). Each row is read independently: a row that cannot be read carries its
reason in :attr:`CsvBox.error` (the caller leaves its image out and reports the line), so that
one bad row does not hide the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

from unihema.data.catalog import DataError
from unihema.data.formats._common import PathLike, data_error, to_float, to_int
from unihema.data.formats.table import read_csv_table

#: required column roles -> default header names
BOX_COLUMNS: Dict[str, str] = {"image": "image", "xmin": "xmin", "ymin": "ymin",
                               "xmax": "xmax", "ymax": "ymax", "label": "label"}
#: optional column roles (no default: used only when named)
OPTIONAL_COLUMNS = ("split", "patient", "width", "height")
_COORDS = ("xmin", "ymin", "xmax", "ymax")


@dataclass(frozen=True)
class CsvBox:
    """One row: its image (as written), box (as written: pixels or 0-1; ``None`` for a row that
    lists an image without cells), label, 1-based line, optional columns and, for a row that
    could not be read, why."""

    image: str
    box: Optional[Tuple[float, float, float, float]]
    label: str
    line: int
    split: Optional[str] = None
    patient: Optional[str] = None
    size: Optional[Tuple[int, int]] = None
    error: Optional[str] = None


def box_columns(columns: Optional[Mapping[str, str]], path: PathLike) -> Dict[str, str]:
    """The role -> header map: :data:`BOX_COLUMNS` updated with ``columns``; a
    :class:`DataError` naming ``path`` (the spec) for an unknown role."""
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(BOX_COLUMNS) - set(OPTIONAL_COLUMNS))
    if unknown:
        raise data_error(path, f"unknown column role(s) {unknown}; valid: "
                               f"{list(BOX_COLUMNS) + list(OPTIONAL_COLUMNS)}", field="columns")
    if ("width" in columns) != ("height" in columns):
        raise data_error(path, "name both 'width' and 'height' columns, or neither",
                         field="columns")
    return {**BOX_COLUMNS, **{k: str(v) for k, v in columns.items()}}


def read_box_csv(path: PathLike, columns: Mapping[str, str], *,
                 normalized: bool) -> List[CsvBox]:
    """Rows of a detection CSV, in file order.

    Args:
        columns: role -> header name (:func:`box_columns`).
        normalized: the declared coordinates: ``True`` 0-1, ``False`` pixels.

    Raises:
        DataError: a structural problem of the file (missing, no header, a missing column with
            the columns found, a row with the wrong number of fields), or values that
            contradict the declared coordinates throughout the file.
    """
    required = [columns[r] for r in BOX_COLUMNS] + [columns[r] for r in OPTIONAL_COLUMNS
                                                    if r in columns]
    rows = read_csv_table(path, required)
    out = [_row(r, columns, path) for r in rows]
    boxes = [b for b in out if b.box is not None and b.error is None]
    if boxes and not normalized and all(max(b.box) <= 1.0 for b in boxes):
        raise data_error(path, f"coordinates are declared pixels but every value of the file "
                               f"is <= 1 (line {boxes[0].line}: {list(boxes[0].box)}): "
                               f"normalised coordinates? declare 'coordinates: normalized'")
    if boxes and normalized and all(max(b.box) > 1.0 for b in boxes):
        raise data_error(path, f"coordinates are declared normalized (0-1) but every box has "
                               f"values > 1 (line {boxes[0].line}: {list(boxes[0].box)}): pixel "
                               f"coordinates? declare 'coordinates: pixels'")
    return out


def _row(row: Mapping[str, object], columns: Mapping[str, str], path: PathLike) -> CsvBox:
    line = int(row["_line"])  # type: ignore[arg-type]
    text = {role: str(row[columns[role]]) for role in list(BOX_COLUMNS) + list(OPTIONAL_COLUMNS)
            if role in columns}
    base = dict(image=text["image"], label=text["label"], line=line,
                split=text.get("split") or None, patient=text.get("patient") or None)
    if not text["image"]:
        return CsvBox(box=None, error=f"{columns['image']}: empty image name", **base)
    try:
        size = None
        if "width" in text:
            size = (to_int(text["width"], path, line=line, field=columns["width"]),
                    to_int(text["height"], path, line=line, field=columns["height"]))
        empty = [r for r in _COORDS if not text[r]]
        if len(empty) == 4 and not text["label"]:
            return CsvBox(box=None, size=size, **base)
        if empty or not text["label"]:
            missing = [columns[r] for r in empty] + ([columns["label"]] if not text["label"]
                                                     else [])
            raise data_error(path, f"empty field(s) {missing}: a row gives a whole box with its "
                                   f"label, or leaves all of {[columns[r] for r in _COORDS]} and "
                                   f"{columns['label']} empty for an image without cells",
                             line=line)
        box = tuple(to_float(text[r], path, line=line, field=columns[r]) for r in _COORDS)
    except DataError as exc:
        # the reason without the "<file>:<line>: " prefix: the caller reports file and line
        reason = str(exc).split(f"{path}:{line}: ", 1)[-1]
        return CsvBox(box=None, error=reason, **base)
    return CsvBox(box=box, size=size, **base)  # type: ignore[arg-type]
