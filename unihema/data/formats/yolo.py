"""YOLO detection labels: one ``<image stem>.txt`` per image, one box a line.

A line is ``cls cx cy w h`` (class index, box centre and size normalised by the image width and
height), optionally followed by ``num_attributes`` integer attribute columns
(``cls cx cy w h a1 .. ak``, as in LeukemiaAttri). Blank lines and lines starting with ``#`` are
skipped; an empty file means "annotated, no object". Class names come from ``classes.txt``,
``obj.names`` (one name a line, line ``i`` is class ``i``) or ``data.yaml`` (``names:`` a list or
an ``{id: name}`` mapping).

Labelling tools leave names files wherever they work: the root, ``labels/``, every
``labels/<split>/`` (LabelImg writes a ``classes.txt`` beside the labels it saves), sometimes
spelled differently from ``data.yaml`` (``Platelet``, ``Platelets``, ``PC``).
:func:`is_names_file` tells them from label files, :func:`find_names_files` finds them all and
:func:`resolve_yolo_names` checks that they agree once each name is mapped to its canonical term
(different spellings of one class are a note, different classes an error).

The reader checks the syntax and that sizes are positive; whether a box lies inside its image
is checked by the adapter (after :func:`yolo_to_xyxy`), so each bad box is reported with its
file and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from unihema.data.formats._common import PathLike, data_error, read_text, to_float, to_int

#: Files that hold the class names, in the order :func:`read_yolo_names` looks for them
#: (any ``*.names`` file is one too, see :func:`is_names_file`).
NAME_FILES = ("classes.txt", "obj.names", "data.yaml", "data.yml")


@dataclass(frozen=True)
class YoloBox:
    """One label line: class index, normalised centre/size, attribute values, 1-based line."""

    cls: int
    cx: float
    cy: float
    w: float
    h: float
    attributes: Tuple[int, ...] = ()
    line: int = 0


def read_yolo(path: PathLike, num_attributes: int = 0) -> List[YoloBox]:
    """Parse one YOLO label file.

    Raises:
        DataError: missing file; a line with other than ``5 + num_attributes`` fields (a
            segmentation-format polygon line is named as such); a non-integer or negative
            class; a non-numeric or non-finite coordinate; a width or height <= 0; a
            non-integer attribute. The message names the file and the line.
    """
    expected = 5 + num_attributes
    out: List[YoloBox] = []
    for lineno, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != expected:
            hint = ""
            if len(parts) > expected and (len(parts) - 1) % 2 == 0 and num_attributes == 0:
                hint = " (a polygon line of the YOLO segmentation format?)"
            raise data_error(path, f"expected {expected} fields (cls cx cy w h"
                                   f"{' a1..a%d' % num_attributes if num_attributes else ''}), "
                                   f"got {len(parts)}: {line!r}{hint}", line=lineno)
        cls = to_int(parts[0], path, line=lineno, field="class")
        if cls < 0:
            raise data_error(path, f"negative class index {cls}", line=lineno)
        cx, cy, w, h = (to_float(v, path, line=lineno, field=f)
                        for v, f in zip(parts[1:5], ("cx", "cy", "w", "h")))
        if w <= 0 or h <= 0:
            raise data_error(path, f"box width and height must be > 0, got w={w} h={h}",
                             line=lineno)
        attrs = tuple(to_int(v, path, line=lineno, field=f"attribute {k + 1}")
                      for k, v in enumerate(parts[5:]))
        out.append(YoloBox(cls, cx, cy, w, h, attrs, lineno))
    return out


def yolo_to_xyxy(box: YoloBox, width: int, height: int) -> Tuple[float, float, float, float]:
    """Pixel-edge xyxy of a normalised box in a ``width`` x ``height`` image (not clipped)."""
    x0 = (box.cx - box.w / 2.0) * width
    y0 = (box.cy - box.h / 2.0) * height
    return (x0, y0, x0 + box.w * width, y0 + box.h * height)


def xyxy_to_yolo(box, width: int, height: int) -> Tuple[float, float, float, float]:
    """Inverse of :func:`yolo_to_xyxy`: ``(cx, cy, w, h)`` normalised."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return ((x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width,
            (y1 - y0) / height)


def _names_from_yaml(path: Path) -> List[str]:
    import yaml

    try:
        doc = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise data_error(path, f"malformed YAML ({exc})",
                         line=None if mark is None else mark.line + 1) from None
    if not isinstance(doc, dict) or "names" not in doc:
        raise data_error(path, "expected a mapping with a 'names:' key", field="names")
    names = doc["names"]
    if isinstance(names, dict):
        try:
            ids = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise data_error(path, f"names keys must be class indices, got {list(names)}",
                             field="names") from None
        if ids != list(range(len(ids))):
            raise data_error(path, f"names ids must be 0..{len(ids) - 1}, got {ids}",
                             field="names")
        by_id = {int(k): v for k, v in names.items()}
        names = [by_id[i] for i in ids]
    if not isinstance(names, list) or not names:
        raise data_error(path, f"names must be a non-empty list or {{id: name}} mapping, got "
                               f"{names!r}", field="names")
    if "nc" in doc and to_int(doc["nc"], path, field="nc") != len(names):
        raise data_error(path, f"nc: {doc['nc']} but names lists {len(names)} classes",
                         field="nc")
    return [str(n).strip() for n in names]


def _names_from_txt(path: Path) -> List[str]:
    names = [line.strip() for line in read_text(path).splitlines()]
    while names and not names[-1]:
        names.pop()
    for i, n in enumerate(names, start=1):
        if not n:
            raise data_error(path, "empty class name (line i is class i - 1)", line=i)
    if not names:
        raise data_error(path, "no class names")
    return names


def read_yolo_names(root_or_file: PathLike) -> List[str]:
    """Class names, index ``i`` = class ``i``.

    ``root_or_file`` is a ``classes.txt``/``obj.names`` (one name a line) or ``data.yaml`` file,
    or a folder holding any of :data:`NAME_FILES`. When a folder holds several of them they must
    agree, otherwise it is an error naming both files.

    Raises:
        DataError: no names file, malformed YAML, missing ``names``, non-contiguous ids, an
            empty name, disagreeing files.
    """
    p = Path(root_or_file)
    if p.is_dir():
        found = [p / n for n in NAME_FILES if (p / n).is_file()]
        if not found:
            raise data_error(p, f"no class-name file; expected one of {', '.join(NAME_FILES)}")
        result = [(f, read_yolo_names(f)) for f in found]
        for f, names in result[1:]:
            if names != result[0][1]:
                raise data_error(p, f"{result[0][0].name} lists {result[0][1]} but {f.name} "
                                    f"lists {names}")
        return result[0][1]
    if p.suffix.lower() in (".yaml", ".yml"):
        return _names_from_yaml(p)
    return _names_from_txt(p)


def is_names_file(path: PathLike) -> bool:
    """True for a class-names file (:data:`NAME_FILES` or any ``*.names``, any case), which is
    never a label file even where it lies among them (``labels/train/classes.txt``)."""
    name = Path(path).name.lower()
    return name in NAME_FILES or name.endswith(".names")


def find_names_files(base: PathLike) -> List[Path]:
    """Every class-names file at or below ``base`` (hidden folders skipped): shallowest first,
    then in :data:`NAME_FILES` order within a folder."""
    base = Path(base)
    found = [p for p in base.rglob("*") if is_names_file(p) and p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(base).parts)]
    rank = {n: i for i, n in enumerate(NAME_FILES)}
    return sorted(found, key=lambda p: (len(p.relative_to(base).parts),
                                        p.parent.as_posix(),
                                        rank.get(p.name.lower(), len(rank)), p.name))


@dataclass(frozen=True)
class YoloNames:
    """The class names of a YOLO layout, checked across all its names files.

    ``names[i]`` is class ``i`` as spelled in ``source``; ``note`` says how the other files
    spell the same classes when they differ (``None`` when every file reads alike).
    """

    names: Tuple[str, ...]
    source: Path
    files: Tuple[Path, ...]
    note: Optional[str] = None


def resolve_yolo_names(files: Sequence[PathLike], canon: Callable[[str], Optional[str]], *,
                       base: Optional[PathLike] = None,
                       declared: Optional[Tuple[PathLike, Sequence[str]]] = None) -> YoloNames:
    """Read every names file and check that they name the same classes in the same order.

    Names are compared after ``canon`` (raw name -> canonical term, ``None`` when unknown; an
    unknown name is compared by its spelling, case and separators aside). The first file is
    the reference (:func:`find_names_files` order), or ``declared``.

    Args:
        base: paths in messages are shown relative to it.
        declared: ``(where, names)``: names declared elsewhere (a dataset spec's ``classes``),
            the reference the files are checked against.

    Raises:
        DataError: no file; a file that cannot be read; two files that disagree on a class
            (different canonical terms, or different numbers of classes), naming both files,
            both lists and the first class index that differs.
    """
    paths = list(dict.fromkeys(Path(f) for f in files))
    if not paths and declared is None:
        raise data_error(base or ".", f"no class-names file ({', '.join(NAME_FILES)}, "
                                      f"*.names)")

    def shown(p: Path) -> str:
        try:
            return p.relative_to(base).as_posix() if base is not None else str(p)
        except ValueError:
            return str(p)

    def key(raw: str) -> str:
        term = canon(raw)
        return term if term is not None else "?" + " ".join(raw.lower().replace("_", " ").split())

    read = [(p, read_yolo_names(p)) for p in paths]
    if declared is not None:
        read.insert(0, (Path(declared[0]), [str(n) for n in declared[1]]))
    ref_path, ref = read[0]
    ref_keys = [key(n) for n in ref]
    for p, names in read[1:]:
        keys = [key(n) for n in names]
        if keys == ref_keys:
            continue
        if len(keys) != len(ref_keys):
            why = f"{len(ref)} classes against {len(names)}"
        else:
            i = next(k for k, (a, b) in enumerate(zip(ref_keys, keys)) if a != b)
            what = [canon(ref[i]) or "unknown", canon(names[i]) or "unknown"]
            why = (f"class {i} is '{ref[i]}' ({what[0]}) in one and '{names[i]}' ({what[1]}) "
                   f"in the other")
            if "unknown" in what:
                why += (" (map an unknown name to its class: the adapter's label map, a spec's "
                        "mapping)")
        raise data_error(ref_path, f"lists {ref} but {shown(p)} lists {names}: {why}; the "
                                   f"class order of the labels is ambiguous")
    groups: Dict[Tuple[str, ...], List[str]] = {}
    for p, names in read:
        groups.setdefault(tuple(names), []).append(shown(p))
    note = None
    if len(groups) > 1:
        spelled = "; ".join(f"{', '.join(where)} {list(names)}" for names, where in groups.items())
        note = (f"the class-names files spell the classes differently but name the same ones "
                f"({spelled}), read as {[canon(n) or n for n in ref]}")
    return YoloNames(tuple(ref), ref_path, tuple(paths), note)
