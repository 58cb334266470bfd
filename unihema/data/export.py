"""Export :class:`~unihema.data.sample.UnifiedSample` records to other tools' formats.

* :func:`to_coco` writes a COCO JSON file that ``pycocotools.coco.COCO`` loads:

  - ``images``: ``id`` (1..N in sample order), ``file_name`` (the absolute path of the source
    image, or the copy's path relative to ``copy_images_to``), ``width``, ``height``, and the
    sample's ``dataset``, ``split``, ``sample_id``, plus ``label`` / ``patient_id`` when set.
  - ``categories``: ``id`` 1..K over ``classes`` (default: the samples' dataset class lists,
    detection classes first, then segmentation classes without ``background``, then any other
    label met), ``name`` (the canonical term), ``supercategory`` (its vocabulary category).
  - one annotation per box: ``bbox`` ``[x, y, w, h]`` pixels, ``area`` ``w * h``,
    ``iscrowd`` 0, ``segmentation`` ``[]`` (a box carries no outline); per-box attributes
    under ``attributes``.
  - one annotation per class present in a sample's semantic mask (``background`` excepted):
    ``segmentation`` the class region as compressed RLE, ``bbox`` and ``area`` of that region,
    ``iscrowd`` 1 and ``semantic`` true. A semantic mask marks *where* a class is, not its
    instances, which is what COCO's crowd regions (always RLE) express: detection evaluation
    ignores them instead of scoring them as single objects.

* :func:`to_hf` saves a ``datasets.Dataset`` with ``save_to_disk`` (one row per sample; columns
  listed in :func:`hf_features`); :func:`export_dataset` writes a ``DatasetDict`` of splits.
* :func:`detectron2_records` returns detectron2's list-of-dicts (``bbox_mode`` 0 is
  ``BoxMode.XYXY_ABS``, ``category_id`` 0-based into ``classes``); :func:`register_detectron2`
  registers a dataset in detectron2's catalogs when detectron2 is installed.

Relative ``image_path`` / ``mask_path`` values are resolved against ``root`` (the adapter's
dataset folder) when given. Image references inside NPZ arrays (``file.npz::array/index``) and
windows of an image (``image::crop/x0,y0,x1,y1``) are decoded and written as PNG when images are
copied or stored in a Hugging Face dataset.
"""

from __future__ import annotations

import io as _io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from unihema.data import vocab
from unihema.data.catalog import DataError, DatasetAdapter
from unihema.data.sample import UnifiedSample

PathLike = Union[str, Path]
BACKGROUND = "background"
#: detectron2's ``BoxMode.XYXY_ABS``.
XYXY_ABS = 0


# ----------------------------------------------------------------------------- helpers
def _resolve(path: str, root: Optional[PathLike]) -> str:
    if "::" in path:  # an array inside an NPZ file: resolve the file part
        file, _, ref = path.partition("::")
        return f"{_resolve(file, root)}::{ref}"
    p = Path(path)
    if not p.is_absolute() and root is not None:
        p = Path(root) / p
    return str(p.absolute())


def _image_bytes(path: str) -> Tuple[bytes, str]:
    """The encoded bytes of an image and a suffix; NPZ references and windows are encoded as PNG."""
    if "::" not in path:
        return Path(path).read_bytes(), Path(path).suffix.lower()
    from PIL import Image

    from unihema.data.io import read_image

    buf = _io.BytesIO()
    Image.fromarray(read_image(path)).save(buf, format="PNG")
    return buf.getvalue(), ".png"


def default_classes(samples: Sequence[UnifiedSample]) -> List[str]:
    """Category names: dataset detect classes, then segment classes, then any other label."""
    names: Dict[str, None] = {}
    for key in ("classes_detect", "classes_segment"):
        for s in samples:
            for n in s.meta.get(key, ()):
                names.setdefault(n)
    for s in samples:
        for n in s.box_labels or []:
            names.setdefault(n)
        for n in (s.mask_values or {}).values():
            names.setdefault(n)
    names.pop(BACKGROUND, None)
    return list(names)


def _supercategory(name: str) -> str:
    try:
        return vocab.category(name)
    except (KeyError, ValueError):
        return "other"


def _mask_regions(sample: UnifiedSample, root: Optional[PathLike]) -> Dict[str, np.ndarray]:
    """Class name -> bool ``[H, W]`` region of each non-background class in the mask."""
    from unihema.data.io import read_mask

    classes = sorted(set((sample.mask_values or {}).values()))
    mask = read_mask(_resolve(sample.mask_path or "", root), sample.mask_values or {}, classes)
    if mask.shape != (sample.height, sample.width):
        raise DataError(f"{sample.key}: mask {sample.mask_path} is {mask.shape[1]}x"
                        f"{mask.shape[0]} but the image is {sample.width}x{sample.height}")
    out = {}
    for i, name in enumerate(classes):
        region = mask == i
        if name != BACKGROUND and region.any():
            out[name] = region
    return out


# ----------------------------------------------------------------------------- COCO
def to_coco(
    samples: Sequence[UnifiedSample],
    out_json: PathLike,
    copy_images_to: Optional[PathLike] = None,
    *,
    classes: Optional[Sequence[str]] = None,
    root: Optional[PathLike] = None,
) -> Dict[str, int]:
    """Write ``samples`` as COCO JSON (see the module docstring); returns the counts written.

    Args:
        samples: records of one split (usually ``adapter.load(split)``).
        out_json: the JSON file to write (folders created).
        copy_images_to: copy each image here as ``<sample_id><suffix>`` and make ``file_name``
            relative to this folder; by default ``file_name`` is the source's absolute path.
        classes: category names in id order (default :func:`default_classes`); a box or mask
            label outside them raises :class:`DataError` naming the sample.
        root: folder that relative sample paths are relative to.

    Returns:
        ``{"images": N, "annotations": M, "categories": K}``.
    """
    from pycocotools import mask as mask_utils

    from unihema.utils import atomic_write_text

    names = list(classes) if classes is not None else default_classes(samples)
    cat_ids = {n: i + 1 for i, n in enumerate(names)}
    copy_dir = Path(copy_images_to) if copy_images_to is not None else None
    if copy_dir is not None:
        copy_dir.mkdir(parents=True, exist_ok=True)
    images: List[Dict[str, Any]] = []
    annotations: List[Dict[str, Any]] = []
    used_names: Dict[str, str] = {}

    def category(sample: UnifiedSample, name: str) -> int:
        if name not in cat_ids:
            raise DataError(f"{sample.key}: label '{name}' is not among the export classes "
                            f"{names}")
        return cat_ids[name]

    for image_id, s in enumerate(samples, start=1):
        src = _resolve(s.image_path, root)
        if copy_dir is not None:
            data, suffix = _image_bytes(src)
            file_name = f"{s.sample_id}{suffix}"
            if file_name in used_names:
                raise DataError(f"{s.key}: copied image name '{file_name}' is also used by "
                                f"{used_names[file_name]}; export one split at a time")
            used_names[file_name] = s.key
            (copy_dir / file_name).write_bytes(data)
        else:
            file_name = src
        image: Dict[str, Any] = {"id": image_id, "file_name": file_name, "width": s.width,
                                 "height": s.height, "dataset": s.dataset, "split": s.split,
                                 "sample_id": s.sample_id}
        if s.label is not None:
            image["label"] = s.label
        if s.patient_id is not None:
            image["patient_id"] = s.patient_id
        images.append(image)

        boxes = s.boxes if s.boxes is not None else np.zeros((0, 4), np.float32)
        for k, (x0, y0, x1, y1) in enumerate(boxes.astype(np.float64).tolist()):
            w, h = x1 - x0, y1 - y0
            ann: Dict[str, Any] = {
                "id": len(annotations) + 1, "image_id": image_id,
                "category_id": category(s, (s.box_labels or [])[k]),
                "bbox": [x0, y0, w, h], "area": w * h, "iscrowd": 0, "segmentation": [],
            }
            if s.box_attributes is not None and s.box_attributes[k]:
                ann["attributes"] = dict(s.box_attributes[k])
            annotations.append(ann)
        if s.mask_path is not None:
            for name, region in _mask_regions(s, root).items():
                rle = mask_utils.encode(np.asfortranarray(region.astype(np.uint8)))
                annotations.append({
                    "id": len(annotations) + 1, "image_id": image_id,
                    "category_id": category(s, name),
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                    "area": float(mask_utils.area(rle)), "iscrowd": 1, "semantic": True,
                    "segmentation": {"size": [int(v) for v in rle["size"]],
                                     "counts": rle["counts"].decode("ascii")},
                })

    datasets = sorted({s.dataset for s in samples})
    coco = {
        "info": {"description": f"{', '.join(datasets) or 'empty'} exported by unihema",
                 "version": "1"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": cat_ids[n], "name": n, "supercategory": _supercategory(n)}
                       for n in names],
    }
    atomic_write_text(out_json, json.dumps(coco))
    return {"images": len(images), "annotations": len(annotations), "categories": len(names)}


# ----------------------------------------------------------------------------- Hugging Face
def _attribute_names(samples: Sequence[UnifiedSample]) -> List[str]:
    keys: Dict[str, None] = dict.fromkeys(vocab.ATTRIBUTES)
    for s in samples:
        keys.update(dict.fromkeys(s.attributes or {}))
        for a in s.box_attributes or []:
            keys.update(dict.fromkeys(a or {}))
    return list(keys)


def hf_features(attribute_names: Sequence[str]):
    """The ``datasets.Features`` of :func:`to_hf`.

    Columns: ``image`` (Image), ``dataset``, ``split``, ``sample_id``, ``width``, ``height``,
    ``patient_id``, ``boxes`` (list of ``[x0, y0, x1, y1]`` float32 pixels; None when the sample
    has no detection labels), ``box_labels``, ``box_attributes`` (list of structs),
    ``mask`` (Image of the raw mask file) with ``mask_values`` (list of ``{value, label}``),
    ``label``, ``label_set``, ``attributes`` (struct over ``attribute_names``), ``qa`` (list of
    ``{question, answer, qtype}``), ``report``, ``meta`` (JSON text).
    """
    from datasets import Features, Image, List, Value

    attrs = {name: Value("string") for name in attribute_names}
    return Features({
        "image": Image(), "dataset": Value("string"), "split": Value("string"),
        "sample_id": Value("string"), "width": Value("int32"), "height": Value("int32"),
        "patient_id": Value("string"),
        "boxes": List(List(Value("float32"), length=4)), "box_labels": List(Value("string")),
        "box_attributes": List(attrs),
        "mask": Image(), "mask_values": List({"value": Value("int64"), "label": Value("string")}),
        "label": Value("string"), "label_set": List(Value("string")),
        "attributes": attrs,
        "qa": List({"question": Value("string"), "answer": Value("string"),
                    "qtype": Value("string")}),
        "report": Value("string"), "meta": Value("string"),
    })


def hf_row(s: UnifiedSample, attribute_names: Sequence[str],
           root: Optional[PathLike] = None) -> Dict[str, Any]:
    """One sample as a row of :func:`hf_features` (the image and mask bytes are embedded)."""
    def attrs(d: Optional[Dict[str, str]]) -> Optional[Dict[str, Optional[str]]]:
        return None if d is None else {k: d.get(k) for k in attribute_names}

    data, suffix = _image_bytes(_resolve(s.image_path, root))
    mask = None
    if s.mask_path is not None:
        mask_file = Path(_resolve(s.mask_path, root))
        mask = {"bytes": mask_file.read_bytes(), "path": mask_file.name}
    return {
        "image": {"bytes": data, "path": f"{s.sample_id}{suffix}"},
        "dataset": s.dataset, "split": s.split, "sample_id": s.sample_id,
        "width": s.width, "height": s.height, "patient_id": s.patient_id,
        "boxes": None if s.boxes is None else s.boxes.astype(np.float32).tolist(),
        "box_labels": None if s.boxes is None else list(s.box_labels or []),
        "box_attributes": (None if s.box_attributes is None
                           else [attrs(a or {}) for a in s.box_attributes]),
        "mask": mask,
        "mask_values": (None if s.mask_values is None else
                        [{"value": int(v), "label": n} for v, n in sorted(s.mask_values.items())]),
        "label": s.label, "label_set": s.label_set,
        "attributes": attrs(s.attributes),
        "qa": [q.to_dict() for q in s.qa], "report": s.report,
        "meta": json.dumps(s.meta, sort_keys=True, default=str),
    }


def to_hf(samples: Sequence[UnifiedSample], out_dir: PathLike, *,
          root: Optional[PathLike] = None):
    """Save ``samples`` as a ``datasets.Dataset`` at ``out_dir`` (``save_to_disk``).

    Rows are generated one at a time into a temporary cache beside ``out_dir`` (removed
    afterwards), so a dataset larger than memory can be exported. Returns the saved dataset
    (reload it with ``datasets.load_from_disk(out_dir)``).
    """
    from datasets import Dataset

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    names = _attribute_names(samples)
    features = hf_features(names)
    samples = list(samples)

    def rows() -> Iterator[Dict[str, Any]]:
        for s in samples:
            yield hf_row(s, names, root)

    cache = Path(tempfile.mkdtemp(prefix=".unihema-hf-cache-", dir=out_dir.parent))
    try:
        if samples:
            ds = Dataset.from_generator(rows, features=features, cache_dir=str(cache))
        else:
            ds = Dataset.from_list([], features=features)
        ds.save_to_disk(str(out_dir))
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    from datasets import load_from_disk

    return load_from_disk(str(out_dir))


# ----------------------------------------------------------------------------- detectron2
def detectron2_records(samples: Sequence[UnifiedSample], classes: Sequence[str], *,
                       root: Optional[PathLike] = None) -> List[Dict[str, Any]]:
    """detectron2 dataset dicts: one per sample, boxes as ``XYXY_ABS`` (``bbox_mode`` 0).

    Each record: ``file_name`` (absolute path), ``image_id`` (0..N-1 in sample order),
    ``height``, ``width``, ``sample_id`` and ``annotations`` (``bbox`` ``[x0, y0, x1, y1]``,
    ``bbox_mode`` 0, ``category_id`` the 0-based index into ``classes``). Samples without boxes
    get an empty annotation list. A box label outside ``classes`` raises :class:`DataError`.
    """
    index = {n: i for i, n in enumerate(classes)}
    records = []
    for image_id, s in enumerate(samples):
        anns = []
        boxes = s.boxes if s.boxes is not None else np.zeros((0, 4), np.float32)
        for box, name in zip(boxes.astype(np.float64).tolist(), s.box_labels or []):
            if name not in index:
                raise DataError(f"{s.key}: box label '{name}' is not in classes {list(classes)}")
            anns.append({"bbox": box, "bbox_mode": XYXY_ABS, "category_id": index[name]})
        records.append({"file_name": _resolve(s.image_path, root), "image_id": image_id,
                        "height": s.height, "width": s.width, "sample_id": s.sample_id,
                        "annotations": anns})
    return records


def register_detectron2(name: str, samples_fn: Callable[[], Sequence[UnifiedSample]],
                        classes: Sequence[str], *, root: Optional[PathLike] = None) -> None:
    """Register ``name`` in detectron2's ``DatasetCatalog`` (lazily: ``samples_fn`` is called
    when detectron2 asks for the data) and set ``thing_classes`` in ``MetadataCatalog``.

    Raises:
        ImportError: detectron2 is not installed (:func:`detectron2_records` works without it).
    """
    try:
        from detectron2.data import DatasetCatalog, MetadataCatalog
    except ImportError as exc:
        raise ImportError(
            "register_detectron2 needs detectron2, which is not installed; install it following "
            "its documentation, or use unihema.data.export.detectron2_records(samples, classes) "
            "to get the same records without it") from exc
    class_list = list(classes)
    DatasetCatalog.register(name, lambda: detectron2_records(samples_fn(), class_list,
                                                             root=root))
    MetadataCatalog.get(name).set(thing_classes=class_list)


# ----------------------------------------------------------------------------- whole datasets
def export_dataset(adapter: DatasetAdapter, out_dir: PathLike, *, to: str,
                   splits: Optional[Sequence[str]] = None,
                   copy_images: bool = False) -> Dict[str, Tuple[Path, int]]:
    """Export splits of a loaded adapter (``unihema data export``).

    ``to="coco"`` writes ``out_dir/<split>.json`` (images copied to ``out_dir/images/<split>/``
    when ``copy_images``); ``to="hf"`` writes ``out_dir/<split>/`` datasets and a
    ``dataset_dict.json`` so that ``datasets.load_from_disk(out_dir)`` returns a
    ``DatasetDict``. Returns split -> (path written, number of samples).
    """
    if to not in ("coco", "hf"):
        raise ValueError(f"export format must be 'coco' or 'hf', got '{to}'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chosen = list(splits) if splits else list(adapter.splits)
    classes = list(adapter.classes.get("detect", ())) + [
        n for n in adapter.classes.get("segment", ())
        if n != BACKGROUND and n not in adapter.classes.get("detect", ())]
    written: Dict[str, Tuple[Path, int]] = {}
    for split in chosen:
        samples = adapter.load(split)
        if to == "coco":
            path = out / f"{split}.json"
            copy_to = out / "images" / split if copy_images else None
            to_coco(samples, path, copy_to, classes=classes or None, root=adapter.root)
        else:
            path = out / split
            to_hf(samples, path, root=adapter.root)
        written[split] = (path, len(samples))
    if to == "hf":
        from unihema.utils import atomic_write_text

        atomic_write_text(out / "dataset_dict.json", json.dumps({"splits": chosen}))
    return written
