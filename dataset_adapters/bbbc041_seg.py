"""Blood-cell segmentation of BBBC041-style smears (Tissue & Cell 2021), Supervisely format."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, Optional

import numpy as np

from dataset_adapters._detseg import derived_mask, image_size, map_label, report_error
from dataset_adapters._splits import files_by_split
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats import read_supervisely
from unihema.data.sample import UnifiedSample

#: Supervisely classTitle -> canonical term
LABEL_MAP: Dict[str, str] = {
    "rbc": "red blood cell",
    "red blood cell": "red blood cell",
    "cell": "red blood cell",
    "wbc": "white blood cell",
    "white blood cell": "white blood cell",
    "leukocyte": "white blood cell",
}
#: derived semantic mask value -> canonical class
MASK_VALUES: Dict[int, str] = {0: "background", 1: "red blood cell", 2: "white blood cell"}
_VALUE = {name: v for v, name in MASK_VALUES.items()}
EXCLUDE = ("meta.json", "key_id_map.json", "obj_class_to_machine_color.json")


@register_adapter("bbbc041_seg")
class BBBC041Seg(DatasetAdapter):
    """Blood cell segmentation dataset (Dataset Ninja "blood-cell-segmentation"), Supervisely.

    <root>/
      meta.json                        Supervisely project meta (classes, colours)
      <dataset>/img/<name>.jpg         field image; <dataset> is a split folder (train,
                                       val, test) or any other name
      <dataset>/ann/<name>.jpg.json    {"size": {"height", "width"}, "objects": [{"classTitle",
                                       "geometryType": bitmap | polygon | rectangle, ...}]}

    Objects are painted in file order into one derived semantic mask (0 background, 1 red
    blood cell, 2 white blood cell; a later object covers an earlier one), written once as
    a PNG under ``<root>/.unihema_cache`` (or ``$UNIHEMA_CACHE``) and rebuilt when the
    annotation changes. The annotation's size must match the image. Split folders give the
    official split; otherwise ``seeded_split`` (70/10/20, seed 0) over the annotation path.
    The Supervisely format is as its documentation states; the class titles (LABEL_MAP) are
    taken from the dataset's description, not from its files, and ``data check`` names any
    other title.
    """

    tasks = ("segment",)
    splits = ("train", "val", "test")
    classes = {"segment": tuple(MASK_VALUES.values())}
    license = "see source (Dataset Ninja page; cite the paper)"
    citation = ("Depto DS, et al. "
                "Automatic segmentation of blood cells from microscopic slides: "
                "A comparative analysis. Tissue and Cell 73:101653, 2021")
    url = "https://datasetninja.com/blood-cell-segmentation"
    size = "blood-cell images with cell masks"
    access = ("download the Supervisely-format archive from "
              "https://datasetninja.com/blood-cell-segmentation; unpack so that meta.json and "
              "the dataset folders lie in the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        for ann in files_by_split(self, "*.json", split, exclude=EXCLUDE):
            if ann.parent.name != "ann":
                self.report(ann, "annotation outside an ann/ folder")
                continue
            sample = self._sample(split, ann)
            if sample is not None:
                yield sample

    def _sample(self, split: str, ann: Path) -> Optional[UnifiedSample]:
        image = ann.parent.parent / "img" / ann.name[: -len(".json")]
        if not image.is_file():
            self.report(ann, f"image {image} is missing")
            return None
        size = image_size(self, image)
        if size is None:
            return None
        try:
            doc = read_supervisely(ann)
        except DataError as exc:
            report_error(self, ann, exc)
            return None
        if (doc.width, doc.height) != size:
            self.report(ann, f"size says {doc.width}x{doc.height} but {image.name} is "
                             f"{size[0]}x{size[1]}")
            return None
        labels = [map_label(self, o.class_title, LABEL_MAP, ann, None) for o in doc.objects]
        if None in labels:
            return None

        def paint() -> np.ndarray:
            out = np.zeros((doc.height, doc.width), dtype=np.uint8)
            for obj, label in zip(doc.objects, labels):
                out[obj.mask] = _VALUE[label]
            return out

        rel = ann.relative_to(self.root).as_posix()[: -len(".json")]
        mask = derived_mask(self, rel, [ann], paint)
        return UnifiedSample(
            dataset=self.name, split=split, sample_id=rel.replace("/ann/", "/"),
            image_path=str(image), width=size[0], height=size[1], mask_path=str(mask),
            mask_values=dict(MASK_VALUES),
            meta={"kind": "field", "objects": len(doc.objects), "license": self.license},
        )

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex
        from unihema.data.formats import encode_bitmap

        ex.write_json(root / "meta.json", {"classes": [
            {"title": "rbc", "shape": "bitmap", "color": "#D0021B"},
            {"title": "wbc", "shape": "polygon", "color": "#4A90E2"}], "tags": []})
        counts = {"train": 2, "val": 1, "test": 1}
        k = 0
        for split, n in counts.items():
            for _ in range(n):
                name = f"{k:08x}-{k * 131:04d}.jpg"
                boxes = ex.layout_boxes(160, 120, 3, size=30, seed=k)
                ex.write_smear(root / split / "img" / name, 160, 120, boxes,
                               ["rbc", "rbc", "wbc"], seed=k)
                objects = []
                for j, box in enumerate(boxes[:2]):
                    m = ex.ellipse_mask(120, 160, [box], [1]).astype(bool)
                    objects.append({"classTitle": "rbc", "geometryType": "bitmap",
                                    "bitmap": encode_bitmap(m)})
                x0, y0, x1, y1 = boxes[2]
                objects.append({"classTitle": "wbc", "geometryType": "polygon",
                                "points": {"exterior": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
                                           "interior": []}})
                ex.write_json(root / split / "ann" / f"{name}.json",
                              {"description": "", "tags": [],
                               "size": {"height": 120, "width": 160}, "objects": objects})
                k += 1
        return counts
