"""Detection records of the VOC and YOLO layouts, under an explicit box policy.

* :func:`voc_sample`: the one builder of a record from a Pascal VOC file, for every VOC
  adapter (bccd, cbc, m5_malaria, makerere_plasmodium, sickle_cell_uganda). What it does with
  boxes that do not fit the image is its ``policy`` argument, a
  :class:`unihema.data.boxes.BoxPolicy` (``bad="error"``: the image is left out;
  ``"drop"``: the box is; ``"clip"``: the box is clipped, with a note).
* :func:`yolo_sample`, :func:`yolo_samples`, :func:`yolo_names`: the YOLO layouts.

Every problem goes through ``adapter.report`` with the file (and line): it raises by default
and is listed by ``unihema data check`` with ``on_error="skip"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from dataset_adapters._detseg import find_image, image_size, map_label, report_error
from dataset_adapters._splits import Rooted, domain_of, files_by_split
from unihema.data.boxes import CLIP_ROUNDING, BoxPolicy, place_box
from unihema.data.catalog import DataError, DatasetAdapter
from unihema.data.sample import UnifiedSample
from unihema.data.vocab import normalize

#: image extensions looked for beside an annotation file
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def voc_sample(adapter: DatasetAdapter, split: str, xml: Path, image: Optional[Path],
               label_map: Mapping[str, str], sample_id: str, *, one_based: bool = True,
               policy: BoxPolicy = CLIP_ROUNDING, flags: Sequence[str] = ("difficult",),
               tiny_side: float = 0.0, extensions: Sequence[str] = IMAGE_EXTENSIONS,
               meta: Optional[Dict] = None) -> Optional[UnifiedSample]:
    """A detection record from one Pascal VOC file, or ``None`` once a problem is reported.

    Args:
        image: the image file; ``None``: found by :func:`~dataset_adapters._detseg.find_image`
            from ``<filename>`` and the file's stem. A given image whose stem differs from
            ``<filename>`` is kept (the annotation names it) and noted.
        one_based: the VOC devkit's 1-based inclusive indices (``x0 = xmin - 1``); ``False``
            for files that write 0-based pixel edges.
        policy: what happens to a box outside the image or empty
            (:func:`unihema.data.boxes.place_box`); with ``bad="error"`` (both named
            policies) the image is left out, with ``"drop"`` only that box.
        flags: per-object VOC flags (``difficult``, ``truncated``) recorded as lists in
            ``meta``, one entry per kept box.
        tiny_side: boxes with a side under this many pixels are kept as the source has them,
            listed in ``meta["tiny_boxes"]`` (indices of kept boxes) and noted; 0: off.
        meta: extra ``meta`` entries.

    The stored image size is read from the image header; the XML's ``<size>``, when present,
    must agree with it (for a given image through
    :func:`unihema.data.formats.voc_image_size`, whose message names both files, as for the
    generic adapter; a found image lies beside the XML and is named by file name). Labels go
    through ``label_map`` (:func:`~dataset_adapters._detseg.map_label`: case and separators
    do not matter); an unknown label leaves the image out.
    """
    from unihema.data.formats import read_voc, voc_image_size

    given = image is not None
    if not xml.is_file():
        adapter.report(xml, f"annotation of '{sample_id}' is missing")
        return None
    if image is not None and not image.is_file():
        adapter.report(image, f"image of '{sample_id}' is missing (annotation {xml.name})")
        return None
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
    elif ann.filename and Path(ann.filename).stem != image.stem:
        adapter.note(xml, f"<filename> says '{ann.filename}'; the image is taken by the "
                          f"annotation's name, {image.name}")
    if given:  # it may lie anywhere: the format reader's check names both files in full
        try:
            width, height = voc_image_size(ann, xml, image)
        except DataError as exc:
            report_error(adapter, xml if str(exc).startswith(str(xml)) else image, exc)
            return None
    else:
        size = image_size(adapter, image)
        if size is None:
            return None
        width, height = size
        if ann.width is not None and (ann.width, ann.height) != (width, height):
            adapter.report(xml, f"<size> says {ann.width}x{ann.height} but {image.name} is "
                                f"{width}x{height}")
            return None
    boxes, labels, kept = [], [], []
    for i, obj in enumerate(ann.objects):
        what = f"object {i} '{obj.name}'"
        label = map_label(adapter, obj.name, label_map, xml, what=what)
        if label is None:
            return None
        box = place_box(adapter, xml, obj.box, width, height, what, policy=policy)
        if box is None:
            if policy.drops_image:
                return None
            continue
        boxes.append(box)
        labels.append(label)
        kept.append(i)
    record = {"kind": "field", "license": adapter.license,
              **{flag: [getattr(ann.objects[i], flag) for i in kept] for flag in flags},
              **(meta or {})}
    tiny = [k for k, (x0, y0, x1, y1) in enumerate(boxes)
            if x1 - x0 < tiny_side or y1 - y0 < tiny_side]
    if tiny:
        record["tiny_boxes"] = tiny
        for k in tiny:
            x0, y0, x1, y1 = boxes[k]
            obj = ann.objects[kept[k]]
            adapter.note(xml, f"object {kept[k]} '{obj.name}' is a {x1 - x0:g}x{y1 - y0:g} px "
                              f"box (a side under {tiny_side:g} px): kept as the source has it")
    return UnifiedSample(
        dataset=adapter.name, split=split, sample_id=sample_id, image_path=str(image),
        width=int(width), height=int(height),
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4), box_labels=labels, meta=record)


def yolo_sample(adapter: DatasetAdapter, split: str, txt: Path, image: Path,
                names: Sequence[str], label_map: Mapping[str, str], sample_id: str, *,
                meta: Optional[Dict] = None):
    """A detection record from one YOLO label file (class names by index from ``names``), or
    ``None`` once a problem is reported."""
    from unihema.data.formats import read_yolo, yolo_to_xyxy

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
        box = place_box(adapter, txt, yolo_to_xyxy(r, width, height), width, height,
                        line=r.line, policy=CLIP_ROUNDING)
        if label is None or box is None:
            return None
        boxes.append(box)
        labels.append(label)
    return UnifiedSample(
        dataset=adapter.name, split=split, sample_id=sample_id, image_path=str(image),
        width=width, height=height, boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
        box_labels=labels, meta={"kind": "field", "license": adapter.license, **(meta or {})},
    )


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
                 extensions: Sequence[str] = IMAGE_EXTENSIONS):
    """Detection records of a YOLO layout below ``base`` (default the root): every label
    ``.txt`` (names files excluded) with its image beside it or in ``../images``, split by
    :func:`files_by_split`. An image without a label file is not seen (YOLO gives no list of
    images); a label file without an image is reported; a names file (``classes.txt`` at any
    depth) is never taken for a label file."""
    from unihema.data.formats import is_names_file

    base = base or adapter.root
    names = yolo_names(adapter, label_map, base)
    sub = Rooted(adapter, base)
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
