"""The generic adapter: a user's own dataset described in YAML, no Python needed.

``unihema data check generic --root DIR --spec my_dataset.yaml`` (or a config data entry with
``name: generic`` and ``spec: my_dataset.yaml``). The spec names the format, where the files
are, how raw class names map to canonical terms and how the splits are made::

    format: voc                      # voc | coco | yolo | csv_boxes | folder | csv | mask | points
    images: JPEGImages/*.jpg         # glob under the root ({split} allowed)
    annotations: Annotations/{stem}.xml   # per-image file ({stem}, {split}); coco/csv: a file
    mapping: {RBC: red blood cell, WBC: white blood cell}   # raw -> canonical
    splits:
      files: {train: ImageSets/train.txt, test: ImageSets/test.txt}   # ids, one a line

Keys (all paths relative to the root):

``format``
    required. What each format reads (readers of :mod:`unihema.data.formats`):

    * ``voc``: ``images`` glob + ``annotations`` template of the XML per image. Task detect.
      ``voc_one_based`` (default true): the devkit's 1-based indices, else 0-based edges.
    * ``yolo``: ``images`` glob + ``annotations`` template of the txt per image; ``classes``
      (index order) or ``names_file`` (classes.txt / data.yaml). Every other names file under
      the root (``labels/classes.txt``, ``labels/<split>/classes.txt``, ``*.names``, data.yaml)
      must name the same classes once mapped (another spelling is a note); a names file is never
      a label file, a label file without an image is a problem. Task detect.
    * ``csv_boxes``: ``table`` a CSV file ({split} allowed), one box a row; ``columns`` maps
      the roles ``image, xmin, ymin, xmax, ymax, label`` (defaults: those names; optional
      ``split``, ``patient``, ``width``, ``height``) to the header; ``coordinates: pixels``
      (edges, 0-based) or ``normalized`` (0-1); image paths relative to ``image_root``;
      ``images`` (optional glob): images it matches without a row are images without cells.
      Task detect.
    * ``points``: ``images`` glob + ``annotations`` template of the point file per image;
      ``point_with_class`` (default true: ``x y class``; false: ``x y`` and ``point_class``
      names the one class), ``point_box_size`` (default 24 px). Task detect.
    * ``mask``: ``images`` glob + ``annotations`` template of the mask per image;
      ``mask_values`` {pixel value: class}. Task segment.
    * ``coco``: ``annotations`` a COCO JSON file ({split} allowed); ``image_root`` the folder
      ``file_name`` is relative to (default the root). Task detect.
    * ``folder``: ``class_root`` a folder of class sub-folders ({split} allowed). Task
      classify.
    * ``csv``: ``table`` a CSV file ({split} allowed) with ``columns: {image: ..., label: ...}``
      (optional ``split``, ``patient``, ``diagnosis`` and ``findings`` columns); image paths
      relative to ``image_root``.
      Task classify.

``classes`` / ``mapping``
    raw names to canonical terms: ``mapping`` {raw: canonical} is consulted first, then the
    vocabulary's synonyms (``unihema.data.vocab.canonical``). ``classes`` lists the raw names
    (for yolo, in index order). An unmapped raw name is a problem of the file that uses it.

``splits``
    one of: ``files: {split: id-list file}`` (image stem or root-relative path without suffix,
    one a line); a ``{split}`` placeholder in the paths (``images: images/{split}/*.jpg``) with
    ``names: [train, val, test]``; a ``split`` column (csv); or ``seeded: {fractions: {train:
    0.7, val: 0.1, test: 0.2}, seed: 0}`` (the default when nothing else is given; see
    :mod:`unihema.data.splits`). ``patient`` (a regular expression searched in the image's
    root-relative path; its group named ``patient``, else its first group, is the patient id)
    keeps each patient in one split. A group named ``diagnosis`` in the same pattern
    (``'(?P<diagnosis>[^/]+)/(?P<patient>[^/]+)/'``) is the patient's diagnosis
    (``meta["patient_label"]``, mapped like a class); the csv format reads both from
    ``patient`` and ``diagnosis`` columns, and genetic findings from a ``findings`` column
    (``"NPM1; FLT3-ITD"``). :func:`unihema.data.patients.dataset_bags` groups the records into
    patient bags.

Every problem (a missing annotation, a bad line, an unknown label, a box outside the image, a
VOC ``<size>`` unlike the image's, a listed id without an image: :mod:`unihema.data.splitlists`)
is reported with its file like any other adapter's; ``unihema data check`` lists them all. Boxes
of the detection formats follow :func:`unihema.data.boxes.fit_box`: an edge past the image by
at most 1 px is moved onto the border (a note), a box farther out is a problem.

Layout: the key tables and the spec checks are in :mod:`unihema.data.generic_spec`, the
loaders of the table formats (csv, csv_boxes) in :mod:`unihema.data.generic_tables`; every
public name is importable from here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np

from unihema.data import formats as fmt
from unihema.data import vocab
from unihema.data.boxes import fit_box
from unihema.data.catalog import DataError, DatasetAdapter, Problem, register_adapter
from unihema.data.generic_spec import (COORDINATES, DEFAULT_SPEC, FORMATS, TASK_OF_FORMAT,
                                       box_csv_spec, load_spec)
from unihema.data.generic_tables import TableLoaders
from unihema.data.io import image_size
from unihema.data.sample import UnifiedSample
from unihema.data.splitlists import select_listed, spec_unlisted
from unihema.data.splits import DEFAULT_FRACTIONS, seeded_split

__all__ = ["COORDINATES", "DEFAULT_SPEC", "FORMATS", "GenericAdapter", "TASK_OF_FORMAT",
           "TableLoaders", "box_csv_spec", "load_spec"]


@register_adapter("generic")
class GenericAdapter(TableLoaders, DatasetAdapter):
    """A user's dataset described by a YAML spec (see :mod:`unihema.data.generic`).

    <root>/                          any layout the spec describes
      unihema_dataset.yaml           the spec, when --spec / spec: is not given
    """

    tasks = ("detect", "segment", "classify")
    splits = ("train", "val", "test")
    license = "as declared by the dataset's owner (spec key 'license')"
    citation = "as declared by the dataset's owner (spec key 'citation')"
    url = "docs/adding_a_dataset.md"
    access = "your own data: describe it in a YAML spec (docs/adding_a_dataset.md)"

    def __init__(self, root: Union[str, Path], *, on_error: str = "raise",
                 spec: Union[str, Path, Dict[str, Any], None] = None) -> None:
        super().__init__(root, on_error=on_error)
        if spec is None or spec == "":
            spec = self.root / DEFAULT_SPEC
        self.spec_path = None if isinstance(spec, dict) else Path(spec)
        self.spec = dict(spec) if isinstance(spec, dict) else load_spec(spec)
        self.format = self.spec["format"]
        self.tasks = (TASK_OF_FORMAT[self.format],)
        sp = self.spec.get("splits") or {}
        if "files" in sp:
            self.splits = tuple(sp["files"])
        elif "names" in sp:
            self.splits = tuple(sp["names"])
        else:
            seeded = sp.get("seeded") or {}
            self.splits = tuple((seeded.get("fractions") or DEFAULT_FRACTIONS))
        self._mapping = {str(k): str(v) for k, v in (self.spec.get("mapping") or {}).items()}
        #: yolo class names once resolved; dataset-level problems already reported
        self._names: Optional[List[str]] = None
        self._reported: set = set()
        for raw, target in self._mapping.items():
            if not vocab.is_canonical(target):
                raise DataError(f"generic: mapping: '{raw}' -> '{target}': not a canonical "
                                f"term ({vocab.canonical.__module__}.canonical lists them)")

    # ------------------------------------------------------------------ helpers
    def _canon(self, raw: str, file: Union[str, Path], line: Optional[int] = None
               ) -> Optional[str]:
        try:
            return vocab.canonical(str(raw), extra=self._mapping)
        except vocab.UnknownLabelError as exc:
            self.report(file, f"{exc}; add it to the spec's mapping", line)
            return None

    def _known(self, raw: str) -> Optional[str]:
        """The canonical term of ``raw``, ``None`` when unknown (nothing reported)."""
        try:
            return vocab.canonical(str(raw), extra=self._mapping)
        except vocab.UnknownLabelError:
            return None

    def _report_once(self, file: Union[str, Path], reason: str, line: Optional[int] = None,
                     *, note: bool = False) -> None:
        """Report a problem (or a note) of a file every split reads once, not in every split's
        load (a problem still raises every time under ``on_error="raise"``)."""
        key = (note, str(file), reason, line)
        if key in self._reported and (note or self.on_error == "skip"):
            return
        self._reported.add(key)
        (self.note if note else self.report)(file, reason, line)

    def _glob(self, pattern: str, split: Optional[str]) -> List[Path]:
        pattern = pattern.replace("{split}", split or "*")
        return sorted(p for p in self.root.glob(pattern) if p.is_file())

    def _rel_id(self, path: Path) -> str:
        return path.relative_to(self.root).with_suffix("").as_posix()

    def _patient_match(self, rel: str) -> Optional["re.Match[str]"]:
        pattern = self.spec.get("patient")
        return re.search(pattern, rel) if pattern else None

    def _patient(self, rel: str) -> Optional[str]:
        """The patient of a root-relative path: the pattern's group ``patient`` when named,
        else its first group, else the whole match."""
        m = self._patient_match(rel)
        if m is None:
            return None
        if "patient" in m.groupdict():
            return m.group("patient")
        return m.group(1) if m.groups() else m.group(0)

    def _select(self, items: List[Tuple[str, Any]], split: str,
                group=None) -> List[Tuple[str, Any]]:
        """Items ``(id, payload)`` of ``split`` by split files or the seeded split; items whose
        path already carried the split (``{split}`` placeholder) are passed through."""
        sp = self.spec.get("splits") or {}
        if "names" in sp:
            return items
        if "files" in sp:  # ids without an image and empty lists are reported
            return select_listed(items, self.root / sp["files"][split], self.report,
                                 f"images: {self.spec.get('images')} under {self.root}")
        seeded = sp.get("seeded") or {}
        parts = seeded_split(items, seeded.get("fractions") or DEFAULT_FRACTIONS,
                             int(seeded.get("seed", 0)),
                             group=group or (lambda it: self._patient(it[0])), key=lambda it: it[0])
        return parts[split]

    def images_in_no_split(self) -> List[Problem]:  # with splits: files only
        return spec_unlisted(self.root, self.spec)

    def _annotation(self, image: Path, split: Optional[str]) -> Path:
        template = str(self.spec["annotations"])
        rel_parent = image.parent.relative_to(self.root).as_posix()
        return self.root / template.format(stem=image.stem, split=split or "",
                                           name=image.name, parent=rel_parent)

    def _images(self, split: str) -> List[Tuple[str, Path]]:
        names = (self.spec.get("splits") or {}).get("names")
        found = self._glob(str(self.spec["images"]), split if names else None)
        return self._select([(self._rel_id(p), p) for p in found], split)

    # ------------------------------------------------------------------ loading
    def _load(self, split: str) -> Iterable[UnifiedSample]:
        loader = getattr(self, f"_load_{self.format}")
        yield from loader(split)

    def _sample(self, split: str, sid: str, image: Path, **fields: Any) -> UnifiedSample:
        meta = {"kind": fields.pop("kind", "field"), "spec": str(self.spec_path or "")}
        m = self._patient_match(sid)
        raw = m.groupdict().get("diagnosis") if m is not None else None
        if raw:  # the patient pattern names the diagnosis too: a patient-level label
            name = self._canon(raw, self.spec_path or "spec: patient")
            if name is not None:
                meta["patient_label"] = name
        return UnifiedSample(dataset=self.name, split=split, sample_id=sid,
                             image_path=str(image), patient_id=self._patient(sid),
                             meta=meta, **fields)

    def _size(self, image: Path) -> Optional[Tuple[int, int]]:
        try:
            return image_size(image)
        except DataError as exc:
            self.report(image, str(exc))
            return None

    def _boxes(self, split, sid, image, ann, objects, size=None) -> Optional[UnifiedSample]:
        """objects: (raw label, box, line) -> a detection sample, or None once reported. Each
        box is fitted to the image (:func:`unihema.data.boxes.fit_box`)."""
        size = size or self._size(image)
        if size is None:
            return None
        boxes, labels = [], []
        for k, (raw, box, line) in enumerate(objects):
            name = self._canon(raw, ann, line)
            if name is None:
                return None
            what = f"'{raw}'" if line is not None else f"box {k} '{raw}'"
            box = fit_box(self, ann, box, size[0], size[1], what, line)
            if box is None:
                return None
            boxes.append(box)
            labels.append(name)
        return self._sample(split, sid, image, width=size[0], height=size[1],
                            boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                            box_labels=labels)

    def _per_image(self, split: str, read) -> Iterable[UnifiedSample]:
        split_tag = split if (self.spec.get("splits") or {}).get("names") else None
        for sid, image in self._images(split):
            ann = self._annotation(image, split_tag)
            if not ann.is_file():
                self.report(ann, f"annotation of image {image} is missing")
                continue
            try:
                sample = read(split, sid, image, ann)
            except DataError as exc:
                self.report_error(ann, exc)
                continue
            if sample is not None:
                yield sample

    def _load_voc(self, split: str) -> Iterable[UnifiedSample]:
        one_based = bool(self.spec.get("voc_one_based", True))

        def read(split, sid, image, ann):
            voc = fmt.read_voc(ann, one_based=one_based)  # <size> must match the image:
            return self._boxes(split, sid, image, ann, [(o.name, o.box, None) for o in voc.objects],
                               size=fmt.voc_image_size(voc, ann, image))
        yield from self._per_image(split, read)

    def _yolo_names(self) -> List[str]:
        """The spec's ``classes`` or ``names_file``, checked against every other names file
        under the root (:func:`unihema.data.formats.resolve_yolo_names`); resolved once."""
        if self._names is None:
            files = fmt.find_names_files(self.root)
            declared = None
            if self.spec.get("classes"):
                declared = (self.spec_path or "spec", [str(c) for c in self.spec["classes"]])
            else:
                files = [self.root / str(self.spec["names_file"])] + files
            try:
                resolved = fmt.resolve_yolo_names(files, self._known, base=self.root,
                                                  declared=declared)
            except DataError as exc:
                raise DataError(f"generic: {exc}") from None
            if resolved.note:
                self.note(resolved.source, resolved.note)
            self._names = list(resolved.names)
        return self._names

    def _orphan_labels(self, split: str) -> None:
        """Report label files the annotation template matches that belong to no image (names
        files aside). Only for templates of ``{stem}`` (and ``{split}`` with split names)."""
        template = str(self.spec["annotations"])
        split_tag = split if (self.spec.get("splits") or {}).get("names") else None
        if "{name}" in template or "{parent}" in template or (
                "{split}" in template and split_tag is None):
            return
        images = self._glob(str(self.spec["images"]), split_tag)
        expected = {self._annotation(p, split_tag) for p in images}
        pattern = template.replace("{split}", split_tag or "").replace("{stem}", "*")
        for label in sorted(self.root.glob(pattern)):
            if label.is_file() and label not in expected and not fmt.is_names_file(label):
                self._report_once(label, f"label file has no image (images: "
                                         f"{self.spec['images']})")

    def _load_yolo(self, split: str) -> Iterable[UnifiedSample]:
        names = self._yolo_names()
        self._orphan_labels(split)

        def read(split, sid, image, ann):
            size = self._size(image)
            if size is None:
                return None
            objs = []
            for b in fmt.read_yolo(ann):
                if b.cls >= len(names):
                    self.report(ann, f"class {b.cls} is not in the names {names}", b.line)
                    return None
                objs.append((names[b.cls], fmt.yolo_to_xyxy(b, *size), b.line))
            return self._boxes(split, sid, image, ann, objs)
        yield from self._per_image(split, read)

    def _load_points(self, split: str) -> Iterable[UnifiedSample]:
        with_class = bool(self.spec.get("point_with_class", True))
        size_px = float(self.spec.get("point_box_size", 24))
        if not with_class and not self.spec.get("point_class"):
            raise DataError("generic: points without a class column need 'point_class'")

        def read(split, sid, image, ann):
            size = self._size(image)
            if size is None:
                return None
            points = fmt.read_points(ann, with_class=with_class)
            boxes = fmt.points_to_boxes(points, size_px, size[0], size[1], path=ann)
            objs = [(p.cls if with_class else self.spec["point_class"], b, p.line)
                    for p, b in zip(points, boxes.tolist())]
            sample = self._boxes(split, sid, image, ann, objs)
            if sample is not None:
                sample.meta["points"] = [[p.x, p.y] for p in points]
            return sample
        yield from self._per_image(split, read)

    def _load_mask(self, split: str) -> Iterable[UnifiedSample]:
        values = {}
        for k, v in (self.spec.get("mask_values") or {}).items():
            try:
                values[int(k)] = vocab.canonical(str(v), extra=self._mapping)
            except (ValueError, vocab.UnknownLabelError) as exc:
                raise DataError(f"generic: mask_values: {k}: {v}: {exc}") from None

        def read(split, sid, image, ann):
            size = self._size(image)
            if size is None:
                return None
            return self._sample(split, sid, image, width=size[0], height=size[1],
                                mask_path=str(ann), mask_values=dict(values))
        yield from self._per_image(split, read)

    def _load_coco(self, split: str) -> Iterable[UnifiedSample]:
        names = (self.spec.get("splits") or {}).get("names")
        path = self.root / str(self.spec["annotations"]).replace("{split}", split or "")
        index = fmt.read_coco(path)
        image_root = self.root / str(self.spec.get("image_root", ""))
        items = [(Path(im.file_name).with_suffix("").as_posix(), im) for im in index.images]
        for sid, im in (items if names else self._select(items, split)):
            image = image_root / im.file_name
            if not image.is_file():
                self.report(image, f"image of COCO entry {im.id} in {path.name} is missing")
                continue
            boxes, labels = [], []
            bad = False
            for a in index.annotations(im.id):
                name = self._canon(a.category, path)
                if name is None:
                    bad = True
                    break
                boxes.append(a.box)
                labels.append(name)
            if not bad:
                yield self._sample(split, sid, image, width=im.width, height=im.height,
                                   boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                                   box_labels=labels)

    def _label_set(self) -> Optional[List[str]]:
        raw = list(self.spec.get("classes") or [])
        out = [vocab.canonical(str(r), extra=self._mapping) for r in raw]
        return list(dict.fromkeys(out)) or None

    def _classified(self, split, items) -> Iterable[UnifiedSample]:
        """items: (sid, image path, raw label, file that named the label, line, patient)."""
        label_set = self._label_set()
        for sid, image, raw, src, line, patient in items:
            name = self._canon(raw, src, line)
            if name is None:
                continue
            if label_set is not None and name not in label_set:
                self.report(src, f"label '{raw}' ({name}) is not among classes {label_set}",
                            line)
                continue
            size = self._size(image)
            if size is None:
                continue
            sample = self._sample(split, sid, image, width=size[0], height=size[1],
                                  label=name, label_set=label_set, kind="crop")
            if patient:
                sample.patient_id = patient
            yield sample

    def _load_folder(self, split: str) -> Iterable[UnifiedSample]:
        names = (self.spec.get("splits") or {}).get("names")
        root = self.root / str(self.spec["class_root"]).replace("{split}", split)
        skipped: List[Path] = []
        found = fmt.scan_class_folders(root, skipped=skipped)
        for p in skipped:
            self.report(p, "not an image in a class folder")
        items = [(self._rel_id(p), (p, c)) for p, c in found]
        chosen = items if names else self._select(items, split)
        yield from self._classified(split, [(sid, p, c, p.parent, None, None)
                                            for sid, (p, c) in chosen])
