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
* :func:`find_image`: the image an annotation file belongs to (beside it, in sibling or
  mirrored image folders).
* :func:`clip_box`: a box placed by :data:`unihema.data.boxes.CLIP_ROUNDING` (the policy of
  the detection adapters that read coordinates themselves; VOC and YOLO records are built in
  :mod:`dataset_adapters._detection`, splits come from :mod:`dataset_adapters._splits`).
* :func:`mirrored_pairs`, :func:`mask_sample`: image/mask pairs in mirrored folder trees and
  their segmentation records; :func:`class_folder_samples`: crops in a folder per class.

Every problem goes through ``adapter.report`` with the file (and line): it raises by default
and is listed by ``unihema data check`` with ``on_error="skip"``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
from PIL import Image

from dataset_adapters._splits import assign_splits
from unihema.data.boxes import CLIP_ROUNDING, place_box
from unihema.data.catalog import DataError, DatasetAdapter
from unihema.data.vocab import normalize
from unihema.utils import atomic_save

#: Environment variable naming the folder of derived files (see :func:`derived_mask`).
CACHE_ENV = "UNIHEMA_CACHE"
#: Hidden folder in a dataset root that holds the derived files by default.
ROOT_CACHE = ".unihema_cache"


# ----------------------------------------------------------------------------- labels
def map_label(adapter: DatasetAdapter, raw: str, mapping: Mapping[str, str],
              file: Path | str, line: Optional[int] = None, *, what: str = ""
              ) -> Optional[str]:
    """The canonical term of ``raw`` (matched after ``normalize``), or ``None`` once reported.

    ``mapping`` is the adapter's module-level raw -> canonical table; a label outside it is a
    problem of the file (an adapter never guesses what an unknown source label means);
    ``what`` names the object in the message (``"object 2 'WBC'"``).
    """
    key = normalize(raw)
    for k, v in mapping.items():
        if normalize(k) == key:
            return v
    known = ", ".join(sorted(dict.fromkeys(mapping))) or "(none)"
    head = f"{what}: " if what else ""
    adapter.report(file, f"{head}unknown label '{raw}'; this dataset's labels are: {known}",
                   line)
    return None


def report_error(adapter: DatasetAdapter, path: Path | str, exc: Exception) -> None:
    """Report a reader's :class:`DataError` (``<file>[:<line>]: <reason>``) as a problem of
    ``path``, keeping its line (:meth:`~unihema.data.catalog.DatasetAdapter.report_error`)."""
    adapter.report_error(path, exc)


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

# ----------------------------------------------------------------------------- geometry
def clip_box(adapter: DatasetAdapter, box: Sequence[float], width: int, height: int,
             file: Path | str, line: Optional[int] = None) -> Optional[tuple]:
    """``box`` placed by :data:`unihema.data.boxes.CLIP_ROUNDING`: moved onto the border when
    it overshoots by at most 2 px (rounding of normalised coordinates), else ``None`` after
    reporting it (outside or empty); the caller then leaves the image out."""
    return place_box(adapter, file, box, width, height, line=line, policy=CLIP_ROUNDING)


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
