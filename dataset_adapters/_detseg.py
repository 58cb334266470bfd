"""Shared pieces of the detection and segmentation adapters (not an adapter itself).

* :func:`map_label`: raw source label -> canonical term through the adapter's label map,
  reporting unknown labels with the file, the line and the labels the map knows.
* :func:`list_images` / :func:`find_beside`: image files of a folder, and the file of another
  folder that belongs to an image (its mask, its annotation), matched by file stem.
* :func:`component_boxes`: boxes of the connected components of a binary mask (masks that
  stand for detection labels, MP-IDB).
* :func:`derived_mask`: a semantic mask the adapter computes from the source (Supervisely
  objects, per-instance masks, thresholded JPEG masks) written once as a PNG in a cache
  folder (:func:`cache_dir`), because a :class:`~unihema.data.sample.UnifiedSample` names its
  mask by path.
* :func:`assign_splits`: the deterministic, patient-aware split of sources without an official
  one; :func:`files_by_split`: annotation files of a split, by split folder or seeded.
* :func:`voc_sample`, :func:`yolo_samples`: detection records of VOC and YOLO layouts (image
  found by :func:`find_image`, boxes clipped by :func:`clip_box`, labels mapped).
* :func:`mirrored_pairs`, :func:`mask_sample`: image/mask pairs in mirrored folder trees and
  their segmentation records.

Every problem goes through ``adapter.report`` with the file (and line): it raises by default
and is listed by ``unihema data check`` with ``on_error="skip"``.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Callable, Dict, Hashable, Iterable, List, Mapping, Optional, Sequence

import numpy as np
from PIL import Image

from unihema.data.catalog import DataError, DatasetAdapter
from unihema.data.vocab import normalize
from unihema.utils import atomic_save

#: Environment variable naming the folder of derived files (see :func:`derived_mask`).
CACHE_ENV = "UNIHEMA_CACHE"
#: Hidden folder in a dataset root that holds the derived files by default.
ROOT_CACHE = ".unihema_cache"


# ----------------------------------------------------------------------------- labels
def map_label(adapter: DatasetAdapter, raw: str, mapping: Mapping[str, str],
              file: Path | str, line: Optional[int] = None) -> Optional[str]:
    """The canonical term of ``raw`` (matched after ``normalize``), or ``None`` once reported.

    ``mapping`` is the adapter's module-level raw -> canonical table; a label outside it is a
    problem of the file (an adapter never guesses what an unknown source label means).
    """
    key = normalize(raw)
    for k, v in mapping.items():
        if normalize(k) == key:
            return v
    known = ", ".join(sorted(dict.fromkeys(mapping))) or "(none)"
    adapter.report(file, f"unknown label '{raw}'; this dataset's labels are: {known}", line)
    return None


def report_error(adapter: DatasetAdapter, path: Path | str, exc: Exception) -> None:
    """Report a reader's :class:`DataError` as a problem of ``path`` (keeping its line).

    The readers' messages read ``<file>:<line>: <reason>``; the file and line become the
    problem's own fields so that ``data check`` does not print the path twice.
    """
    msg, prefix, line = str(exc), str(path), None
    if msg.startswith(prefix):
        rest = msg[len(prefix):]
        m = re.match(r":(\d+)(?=:)", rest)
        if m:
            line, rest = int(m.group(1)), rest[m.end():]
        msg = rest.lstrip(":").strip() or msg
    adapter.report(path, msg, line)


def image_size(adapter: DatasetAdapter, path: Path) -> Optional[tuple]:
    """``(width, height)`` from the image header, or ``None`` once the problem is reported."""
    from unihema.data import io

    try:
        return io.image_size(path)
    except DataError as exc:
        report_error(adapter, path, exc)
        return None


# ----------------------------------------------------------------------------- files
def list_images(folder: Path, extensions: Sequence[str]) -> List[Path]:
    """Image files directly in ``folder`` (case-insensitive extensions, hidden files skipped),
    sorted by name; an empty list when the folder does not exist."""
    if not folder.is_dir():
        return []
    exts = {e.lower() for e in extensions}
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in exts)


def find_beside(folder: Path, stem: str, extensions: Sequence[str]) -> Optional[Path]:
    """The file ``<folder>/<stem><ext>`` for the first ``ext`` that exists (any case)."""
    if not folder.is_dir():
        return None
    wanted = {f"{stem}{e}".lower() for e in extensions}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.name.lower() in wanted:
            return p
    return None


# ----------------------------------------------------------------------------- geometry
#: how far (pixels) a source box may overshoot the image before it is an error; smaller
#: overshoots (rounding of normalised YOLO coordinates, VOC boxes touching the border) are clipped
BOX_TOLERANCE = 2.0


def clip_box(adapter: DatasetAdapter, box: Sequence[float], width: int, height: int,
             file: Path | str, line: Optional[int] = None) -> Optional[tuple]:
    """``box`` clipped to the image when it overshoots by at most :data:`BOX_TOLERANCE`
    pixels; ``None`` after reporting a box further outside, or empty once clipped."""
    x0, y0, x1, y1 = (float(v) for v in box)
    t = BOX_TOLERANCE
    if x0 < -t or y0 < -t or x1 > width + t or y1 > height + t:
        adapter.report(file, f"box {[round(v, 1) for v in (x0, y0, x1, y1)]} lies outside the "
                             f"{width}x{height} image", line)
        return None
    x0, x1 = max(0.0, x0), min(float(width), x1)
    y0, y1 = max(0.0, y0), min(float(height), y1)
    if x1 <= x0 or y1 <= y0:
        adapter.report(file, f"box {[round(v, 1) for v in box]} is empty (need x0 < x1, "
                             f"y0 < y1)", line)
        return None
    return (x0, y0, x1, y1)


def component_boxes(mask: np.ndarray, min_pixels: int = 1) -> np.ndarray:
    """Boxes of the 8-connected components of a boolean mask, ``[N, 4]`` float32 xyxy edges.

    Components are ordered by their first pixel in raster order; those with fewer than
    ``min_pixels`` pixels are left out (JPEG speckle). Works on runs of each row, so the cost
    grows with the number of runs, not of pixels.
    """
    mask = np.asarray(mask, dtype=bool)
    parent: List[int] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    runs: List[tuple] = []  # (row, start, end_exclusive, run id)
    prev: List[tuple] = []
    for y in range(mask.shape[0]):
        row = mask[y]
        if not row.any():
            prev = []
            continue
        edges = np.diff(np.concatenate(([0], row.astype(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        cur = []
        for s, e in zip(starts.tolist(), ends.tolist()):
            rid = len(parent)
            parent.append(rid)
            for ps, pe, pid in prev:  # 8-connectivity: runs touching diagonally join
                if ps > e:
                    break
                if pe >= s:
                    a, b = find(rid), find(pid)
                    if a != b:
                        parent[max(a, b)] = min(a, b)
            cur.append((s, e, rid))
            runs.append((y, s, e, rid))
        prev = cur
    boxes: Dict[int, List[int]] = {}
    for y, s, e, rid in runs:
        r = find(rid)
        b = boxes.setdefault(r, [s, y, e, y + 1, 0])
        b[0], b[1], b[2], b[3] = min(b[0], s), min(b[1], y), max(b[2], e), max(b[3], y + 1)
        b[4] += e - s
    out = [b[:4] for _, b in sorted(boxes.items()) if b[4] >= min_pixels]
    return np.asarray(out, dtype=np.float32).reshape(-1, 4)


# ----------------------------------------------------------------------------- derived masks
def cache_dir(adapter: DatasetAdapter) -> Path:
    """Folder of an adapter's derived files.

    ``$UNIHEMA_CACHE/derived_masks/<dataset>/<hash of the root>`` when the variable is set;
    else ``<root>/.unihema_cache/derived_masks/<dataset>`` when the root is writable (hidden:
    no adapter lists it as data); else ``~/.cache/unihema/derived_masks/<dataset>/<hash>``.
    """
    digest = hashlib.sha1(str(adapter.root.resolve()).encode()).hexdigest()[:12]
    if os.environ.get(CACHE_ENV):
        base = Path(os.environ[CACHE_ENV]).expanduser()
        return base / "derived_masks" / adapter.name / digest
    if os.access(adapter.root, os.W_OK):
        return adapter.root / ROOT_CACHE / "derived_masks" / adapter.name
    return Path.home() / ".cache" / "unihema" / "derived_masks" / adapter.name / digest


def derived_mask(adapter: DatasetAdapter, relative: str, sources: Sequence[Path],
                 build: Callable[[], np.ndarray]) -> Path:
    """Path of a uint8 PNG mask computed by ``build()``, written when absent or out of date.

    The file lives in ``<cache_dir(adapter)>/<relative>.png`` and is rebuilt when any of
    ``sources`` is newer. Writing goes through a temporary file, so an
    interrupted run never leaves a half-written mask behind.
    """
    path = cache_dir(adapter) / f"{relative}.png"
    newest = max((p.stat().st_mtime for p in sources), default=0.0)
    if path.is_file() and path.stat().st_mtime >= newest:
        return path
    arr = np.asarray(build())
    if arr.ndim != 2 or arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
        raise ValueError(f"derived mask {relative} must be [H, W] with values 0..255")
    image = Image.fromarray(arr.astype(np.uint8), mode="L")
    return atomic_save(path, lambda tmp: image.save(tmp, format="PNG"), durable=False)


# ----------------------------------------------------------------------------- splits
#: Split fractions of sources without an official split.
FRACTIONS: Dict[str, float] = {"train": 0.7, "val": 0.1, "test": 0.2}


def assign_splits(keys: Sequence[str], groups: Optional[Sequence[Optional[Hashable]]] = None,
                  *, seed: int = 0, fractions: Mapping[str, float] = FRACTIONS
                  ) -> Dict[str, str]:
    """``key -> split`` by :func:`unihema.data.splits.seeded_split` (70/10/20, seed 0).

    ``keys`` name the items stably (relative paths); ``groups`` gives each item's patient or
    ``None``: one patient never spans two splits. ``write_example`` uses the same function, so
    an example's expected counts follow the adapter's own rule.
    """
    from unihema.data.splits import split_of

    keys = list(keys)
    patient = None if groups is None else dict(zip(keys, groups)).get
    return split_of(keys, dict(fractions), seed, patient)


def count_splits(assignment: Mapping[str, str], splits: Iterable[str]) -> Dict[str, int]:
    """Number of keys per split, every split listed (zero included)."""
    out = {s: 0 for s in splits}
    for split in assignment.values():
        out[split] += 1
    return out


# ----------------------------------------------------------------------------- box records
def voc_sample(adapter: DatasetAdapter, split: str, xml: Path, image: Optional[Path],
               label_map: Mapping[str, str], sample_id: str, *, one_based: bool = True,
               extensions: Sequence[str] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"),
               meta: Optional[Dict] = None):
    """A detection record from one Pascal VOC file, or ``None`` once a problem is reported.

    ``image`` is the image file (``None``: found by :func:`find_image` from ``<filename>``). The
    stored image size is read from the image header, and the XML's ``<size>``, when present,
    must agree with it. Boxes are clipped by :func:`clip_box`; labels go through ``label_map``.
    """
    from unihema.data.formats import read_voc
    from unihema.data.sample import UnifiedSample

    try:
        ann = read_voc(xml, one_based=one_based)
    except DataError as exc:
        report_error(adapter, xml, exc)
        return None
    if image is None:
        image = find_image(xml, [ann.filename], extensions)
        if image is None:
            adapter.report(xml, f"no image found for it (looked for '{ann.filename}' and "
                                f"{xml.stem}.<{'|'.join(e.lstrip('.') for e in extensions)}> "
                                f"beside it and in ../images, ../JPEGImages)")
            return None
    elif not image.is_file():
        adapter.report(xml, f"annotates {image}, which does not exist")
        return None
    size = image_size(adapter, image)
    if size is None:
        return None
    width, height = size
    if ann.width is not None and (ann.width, ann.height) != (width, height):
        adapter.report(xml, f"<size> says {ann.width}x{ann.height} but {image.name} is "
                            f"{width}x{height}")
        return None
    boxes, labels = [], []
    for i, obj in enumerate(ann.objects):
        label = map_label(adapter, obj.name, label_map, f"{xml} (object {i})")
        box = clip_box(adapter, obj.box, width, height, f"{xml} (object {i} '{obj.name}')")
        if label is None or box is None:
            return None
        boxes.append(box)
        labels.append(label)
    return UnifiedSample(
        dataset=adapter.name, split=split, sample_id=sample_id, image_path=str(image),
        width=width, height=height, boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        box_labels=labels,
        meta={"kind": "field", "license": adapter.license,
              "difficult": [o.difficult for o in ann.objects], **(meta or {})},
    )


def yolo_sample(adapter: DatasetAdapter, split: str, txt: Path, image: Path,
                names: Sequence[str], label_map: Mapping[str, str], sample_id: str, *,
                meta: Optional[Dict] = None):
    """A detection record from one YOLO label file (class names by index from ``names``), or
    ``None`` once a problem is reported."""
    from unihema.data.formats import read_yolo, yolo_to_xyxy
    from unihema.data.sample import UnifiedSample

    size = image_size(adapter, image)
    if size is None:
        return None
    width, height = size
    try:
        rows = read_yolo(txt)
    except DataError as exc:
        report_error(adapter, txt, exc)
        return None
    boxes, labels = [], []
    for r in rows:
        if r.cls >= len(names):
            adapter.report(txt, f"class index {r.cls} but only {len(names)} class names "
                                f"({', '.join(names)})", r.line)
            return None
        label = map_label(adapter, names[r.cls], label_map, txt, r.line)
        box = clip_box(adapter, yolo_to_xyxy(r, width, height), width, height, txt, r.line)
        if label is None or box is None:
            return None
        boxes.append(box)
        labels.append(label)
    return UnifiedSample(
        dataset=adapter.name, split=split, sample_id=sample_id, image_path=str(image),
        width=width, height=height, boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        box_labels=labels, meta={"kind": "field", "license": adapter.license, **(meta or {})},
    )


# ----------------------------------------------------------------------------- scanning
#: folder names that carry an official split, and the split they mean
SPLIT_NAMES: Dict[str, str] = {"train": "train", "training": "train", "val": "val",
                               "valid": "val", "validation": "val", "test": "test",
                               "testing": "test"}


def split_from_path(rel: Path) -> Optional[str]:
    """The split named by a folder of a root-relative path (``HCM/1000x/train/a.xml`` ->
    ``train``), or ``None``."""
    for part in rel.parts[:-1]:
        if part.lower() in SPLIT_NAMES:
            return SPLIT_NAMES[part.lower()]
    return None


def domain_of(rel: Path) -> str:
    """The folders of a root-relative path before its split folder (``HCM/1000x``), ``""``."""
    out = []
    for part in rel.parts[:-1]:
        if part.lower() in SPLIT_NAMES or part.lower() in ("images", "annotations", "labels",
                                                           "jpegimages", "xml"):
            break
        out.append(part)
    return "/".join(out)


def files_by_split(adapter: DatasetAdapter, pattern: str, split: str,
                   exclude: Sequence[str] = (),
                   skip: Optional[Callable[[Path], bool]] = None) -> List[Path]:
    """Files of ``split`` matching ``pattern`` below the root, split by their folders.

    When some folder of the layout names a split (``train``, ``valid``, ``test``...), that is
    the official split and a file outside any split folder is reported. When none does, the
    files are split by :func:`assign_splits` over their root-relative paths (70/10/20,
    seed 0). Hidden files, names in ``exclude`` and files for which ``skip`` is true are
    skipped.
    """
    files = sorted(p for p in adapter.root.rglob(pattern)
                   if p.is_file() and p.name not in exclude and not (skip and skip(p))
                   and not any(part.startswith(".") for part in p.relative_to(adapter.root).parts))
    if not files:
        raise DataError(f"{adapter.name}: no {pattern} files under {adapter.root}. Expected "
                        f"layout:\n{adapter.layout()}")
    rels = [p.relative_to(adapter.root) for p in files]
    official = [split_from_path(r) for r in rels]
    if any(s is not None for s in official):
        out = []
        for path, s in zip(files, official):
            if s is None:
                adapter.report(path, f"lies in no split folder ({', '.join(SPLIT_NAMES)})")
            elif s == split:
                out.append(path)
        return out
    assignment = assign_splits([r.as_posix() for r in rels])
    return [p for p, r in zip(files, rels) if assignment[r.as_posix()] == split]


_ANNOTATION_DIRS = ("annotations", "labels", "xml", "label", "gt")
_IMAGE_DIRS = ("images", "JPEGImages", "img", "Images")


def find_image(annotation: Path, names: Sequence[str], extensions: Sequence[str]
               ) -> Optional[Path]:
    """The image an annotation file belongs to: ``names`` (its ``<filename>``) and its stem
    with each of ``extensions``, looked up beside it, in sibling image folders
    (``.../annotations/a.xml`` -> ``.../images/a.jpg``) and in the mirrored image tree
    (``labels/train/a.txt`` -> ``images/train/a.jpg``)."""
    parent = annotation.parent
    folders = [parent] + [parent.parent / d for d in _IMAGE_DIRS]
    parts = parent.parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].lower() in _ANNOTATION_DIRS:
            folders += [Path(*parts[:i], d, *parts[i + 1:]) for d in _IMAGE_DIRS]
            break
    candidates = [n for n in names if n] + [f"{annotation.stem}{e}" for e in extensions]
    for folder in folders:
        for name in candidates:
            p = folder / name
            if p.is_file():
                return p
    return None


def yolo_names(adapter: DatasetAdapter, label_map: Mapping[str, str],
               base: Optional[Path] = None) -> List[str]:
    """Class names of a YOLO layout, from every names file (``classes.txt``, ``obj.names``,
    ``*.names``, ``data.yaml``) at or below ``base`` (default the root): the shallowest one's,
    once all are checked to name the same classes through ``label_map``
    (:func:`unihema.data.formats.resolve_yolo_names`). Spellings of the same classes are noted
    once per adapter; :class:`DataError` when there is no file or two name different classes.
    """
    from unihema.data.formats import find_names_files, resolve_yolo_names

    base = base or adapter.root
    # resolved once per adapter: the note is about the dataset, not about each split
    cache = vars(adapter).setdefault("_yolo_names", {})
    if base in cache:
        return cache[base]
    files = find_names_files(base)
    if not files:
        raise DataError(f"{adapter.name}: no class-names file (classes.txt, obj.names, "
                        f"*.names, data.yaml) under {base}")

    def canon(raw: str) -> Optional[str]:
        key = normalize(raw)
        return next((v for k, v in label_map.items() if normalize(k) == key), None)

    try:
        resolved = resolve_yolo_names(files, canon, base=base)
    except DataError as exc:
        raise DataError(f"{adapter.name}: {exc}") from None
    if resolved.note:
        adapter.note(resolved.source, resolved.note)
    cache[base] = list(resolved.names)
    return cache[base]


def yolo_samples(adapter: DatasetAdapter, split: str, label_map: Mapping[str, str], *,
                 base: Optional[Path] = None,
                 extensions: Sequence[str] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")):
    """Detection records of a YOLO layout below ``base`` (default the root): every label
    ``.txt`` (names files excluded) with its image beside it or in ``../images``, split by
    :func:`files_by_split`. An image without a label file is not seen (YOLO gives no list of
    images); a label file without an image is reported; a names file (``classes.txt`` at any
    depth) is never taken for a label file."""
    from unihema.data.formats import is_names_file

    base = base or adapter.root
    names = yolo_names(adapter, label_map, base)
    sub = _Rooted(adapter, base)
    for txt in files_by_split(sub, "*.txt", split, skip=is_names_file):
        image = find_image(txt, [], extensions)
        if image is None:
            exts = "|".join(e.lstrip(".") for e in extensions)
            adapter.report(txt, f"no image {txt.stem}.<{exts}> beside it, in ../images or in "
                                f"the images/ tree mirroring labels/")
            continue
        rel = txt.relative_to(base).with_suffix("")
        sample = yolo_sample(adapter, split, txt, image, names, label_map, rel.as_posix(),
                             meta={"domain": domain_of(txt.relative_to(base))})
        if sample is not None:
            yield sample


class _Rooted:
    """``adapter`` seen with another root (for :func:`files_by_split` below a sub-folder)."""

    def __init__(self, adapter: DatasetAdapter, root: Path) -> None:
        self._adapter, self.root = adapter, root

    def __getattr__(self, name):
        return getattr(self._adapter, name)


# ----------------------------------------------------------------------------- mask records
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff", ".gif", ".jpg", ".jpeg")


def mirrored_pairs(adapter: DatasetAdapter, images: Path, masks: Path,
                   extensions: Sequence[str] = (".jpg", ".jpeg", ".png", ".bmp", ".tif",
                                                ".tiff"),
                   mask_suffix: str = "") -> List[tuple]:
    """``(image, mask, relative stem)`` for every image below ``images`` whose mask lies at the
    same relative path below ``masks`` (``<stem><mask_suffix>`` with any mask extension).

    An image without its mask is reported; hidden files are skipped. Sorted by path.
    """
    if not images.is_dir():
        raise DataError(f"{adapter.name}: {images} is missing. Expected layout:\n"
                        f"{adapter.layout()}")
    exts = {e.lower() for e in extensions}
    out = []
    for path in sorted(images.rglob("*")):
        rel = path.relative_to(images)
        if (not path.is_file() or path.suffix.lower() not in exts
                or any(part.startswith(".") for part in rel.parts)):
            continue
        mask = find_beside(masks / rel.parent, f"{path.stem}{mask_suffix}", MASK_EXTENSIONS)
        if mask is None:
            adapter.report(path, f"no mask {path.stem}{mask_suffix}.<png|bmp|...> in "
                                 f"{masks / rel.parent}")
            continue
        out.append((path, mask, rel.with_suffix("").as_posix()))
    if not out and not adapter.problems:
        raise DataError(f"{adapter.name}: no images below {images}. Expected layout:\n"
                        f"{adapter.layout()}")
    return out


def mask_sample(adapter: DatasetAdapter, split: str, image: Path, mask: Path,
                mask_values: Mapping[int, str], sample_id: str, *,
                label: Optional[str] = None, patient_id: Optional[str] = None,
                kind: str = "crop", meta: Optional[Dict] = None):
    """A segmentation record (plus ``label`` with the adapter's classify list when given), or
    ``None`` once an unreadable image is reported. The mask is decoded by ``data check`` and
    the mapper, which both reject values outside ``mask_values``."""
    from unihema.data.sample import UnifiedSample

    size = image_size(adapter, image)
    if size is None:
        return None
    return UnifiedSample(
        dataset=adapter.name, split=split, sample_id=sample_id, image_path=str(image),
        width=size[0], height=size[1], patient_id=patient_id, mask_path=str(mask),
        mask_values=dict(mask_values), label=label,
        label_set=list(adapter.classes["classify"]) if label is not None else None,
        meta={"kind": kind, "license": adapter.license, **(meta or {})},
    )


def split_pairs(pairs: Sequence[tuple], split: str) -> List[tuple]:
    """The ``(image, mask, key)`` pairs from :func:`mirrored_pairs` that the seeded split
    (:func:`assign_splits` over the keys) puts in ``split``."""
    assignment = assign_splits([key for _, _, key in pairs])
    return [pair for pair in pairs if assignment[pair[2]] == split]


def mask_samples(adapter: DatasetAdapter, split: str, images: Path, masks: Path,
                 mask_values: Mapping[int, str], *, prefix: str = "", kind: str = "crop"):
    """Segmentation records of ``split`` from image/mask files at mirrored paths below
    ``images`` and ``masks``; sample ids are ``prefix`` + the relative stem."""
    for image, mask, key in split_pairs(mirrored_pairs(adapter, images, masks), split):
        sample = mask_sample(adapter, split, image, mask, mask_values, prefix + key, kind=kind)
        if sample is not None:
            yield sample


def class_folder_samples(adapter: DatasetAdapter, split: str, base: Path,
                         label_map: Mapping[str, str], *, prefix: str = "",
                         kind: str = "crop"):
    """Classification records of ``split`` from a folder per class below ``base`` (labels
    through ``label_map``, seeded split over the relative stems, ids ``prefix`` + stem)."""
    from unihema.data.formats import scan_class_folders
    from unihema.data.sample import UnifiedSample

    items = scan_class_folders(base)
    keys = [p.relative_to(base).with_suffix("").as_posix() for p, _ in items]
    assignment = assign_splits(keys)
    for (path, folder), key in zip(items, keys):
        if assignment[key] != split:
            continue
        label = map_label(adapter, folder, label_map, path.parent)
        size = image_size(adapter, path) if label is not None else None
        if size is not None:
            yield UnifiedSample(
                dataset=adapter.name, split=split, sample_id=prefix + key, image_path=str(path),
                width=size[0], height=size[1], label=label,
                label_set=list(adapter.classes["classify"]),
                meta={"kind": kind, "raw_label": folder, "license": adapter.license})
