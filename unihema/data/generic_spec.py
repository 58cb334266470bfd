"""The spec of the generic adapter: its keys, and reading and checking a spec file.

The keys and what each format reads are documented in :mod:`unihema.data.generic`, the module
users meet (``unihema data check generic --spec my_dataset.yaml``); this module holds the key
tables and the checks that :func:`load_spec` runs before the adapter reads a single file, so a
bad spec fails naming the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Tuple, Union

import yaml

from unihema.config.loader import load_yaml_text  # a repeated key is an error
from unihema.data import formats as fmt
from unihema.data.catalog import DataError


FORMATS = ("voc", "coco", "yolo", "csv_boxes", "folder", "csv", "mask", "points")
#: the task each format supervises
TASK_OF_FORMAT = {"voc": "detect", "coco": "detect", "yolo": "detect", "points": "detect",
                  "csv_boxes": "detect", "mask": "segment", "folder": "classify", "csv": "classify"}
_KEYS = {"format", "name", "images", "annotations", "classes", "mapping", "names_file",
         "splits", "patient", "voc_one_based", "point_with_class", "point_class",
         "point_box_size", "mask_values", "image_root", "class_root", "table", "columns",
         "coordinates", "license", "citation"}
#: values of the csv_boxes key ``coordinates``
COORDINATES = ("pixels", "normalized")
#: the spec file looked for in the root when none is given
DEFAULT_SPEC = "unihema_dataset.yaml"


def load_spec(path: Union[str, Path]) -> Dict[str, Any]:
    """Read and check a spec file; :class:`DataError` naming the file and the key."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"generic: spec file {p} not found")
    try:
        spec = load_yaml_text(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(f"generic: {p}: malformed YAML ({exc})") from None
    if not isinstance(spec, dict):
        raise DataError(f"generic: {p}: expected a mapping of keys, got {type(spec).__name__}")
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise DataError(f"generic: {p}: unknown key(s) {unknown}; valid: {sorted(_KEYS)}")
    if spec.get("format") not in FORMATS:
        raise DataError(f"generic: {p}: format: expected one of {', '.join(FORMATS)}, got "
                        f"{spec.get('format')!r}")
    need = {"voc": ("images", "annotations"), "yolo": ("images", "annotations"),
            "points": ("images", "annotations"), "mask": ("images", "annotations",
                                                          "mask_values"),
            "coco": ("annotations",), "folder": ("class_root",), "csv": ("table", "columns"),
            "csv_boxes": ("table", "coordinates")}
    missing = [k for k in need[spec["format"]] if k not in spec]
    if missing:
        raise DataError(f"generic: {p}: format {spec['format']} needs key(s) {missing}")
    if spec["format"] == "yolo" and not (spec.get("classes") or spec.get("names_file")):
        raise DataError(f"generic: {p}: format yolo needs 'classes' (index order) or "
                        f"'names_file'")
    if spec["format"] == "csv_boxes":
        box_csv_spec(spec, p)
    return spec


def box_csv_spec(spec: Dict[str, Any], where: Union[str, Path]) -> Tuple[Dict[str, str], bool]:
    """The column map and ``normalized`` flag of a csv_boxes spec; :class:`DataError` naming
    ``where`` (the spec) and the key for a bad value."""
    coords = spec.get("coordinates")
    if coords not in COORDINATES:
        raise DataError(f"generic: {where}: coordinates: expected one of "
                        f"{', '.join(COORDINATES)}, got {coords!r}")
    cols = fmt.box_columns(spec.get("columns"), where)
    images = str(spec.get("images", ""))
    by_split = "split" in (spec.get("columns") or {}) or "{split}" in str(spec.get("table"))
    if images and by_split and "{split}" not in images:
        raise DataError(f"generic: {where}: images: '{images}' needs {{split}} (the table's "
                        f"split decides the split of listed images; images without rows get "
                        f"theirs from their path), or leave 'images' out")
    if (spec.get("splits") or {}).get("names") and not by_split:
        raise DataError(f"generic: {where}: splits: names needs {{split}} in the table's path "
                        f"or a 'split' column; otherwise use splits: files or seeded")
    return cols, coords == "normalized"
