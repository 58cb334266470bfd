"""Raabin-WBC detection: white-cell boxes on smear fields, as a Roboflow COCO export."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

import numpy as np

from dataset_adapters._detseg import clip_box, image_size, map_label, report_error
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats import read_coco
from unihema.data.sample import UnifiedSample

#: COCO category name -> canonical term. The Roboflow export also lists the project itself as
#: category 0 (a supercategory no annotation uses); categories no annotation uses are not read.
LABEL_MAP: Dict[str, str] = {
    "Neutrophil": "neutrophil",
    "Lymphocyte": "lymphocyte",
    "Monocyte": "monocyte",
    "Eosinophil": "eosinophil",
    "Basophil": "basophil",
    "WBC": "white blood cell",
}

#: split -> export folder
SPLIT_FOLDERS = {"train": "train", "val": "valid", "test": "test"}
ANNOTATIONS = "_annotations.coco.json"


@register_adapter("raabin_det")
class RaabinDet(DatasetAdapter):
    """Raabin-WBC detection export (Roboflow "COCO JSON" format).

    <root>/
      train/_annotations.coco.json      COCO: images (file_name, width, height), categories,
      train/<file_name>                 annotations with bbox [x, y, w, h] in pixels
      valid/_annotations.coco.json      (read as split val)
      valid/<file_name>
      test/_annotations.coco.json
      test/<file_name>

    Boxes are COCO pixel edges, clipped when they overshoot the border by up to 2 pixels; the
    recorded image size must match the file. An image listed without annotations holds no
    white cell (zero boxes). Splits are the export's folders. The layout is Roboflow's
    documented export format; the class names come from the Raabin-WBC documentation (not
    seen in an export), and ``data check`` names any other category in use.
    """

    tasks = ("detect",)
    splits = ("train", "val", "test")
    classes = {"detect": tuple(dict.fromkeys(LABEL_MAP.values()))}
    license = "CC BY-SA 4.0"
    citation = ("Kouzehkanan ZM, et al. A large dataset of white blood cells containing cell "
                "locations and types, along with segmented nuclei and cytoplasm. Scientific "
                "Reports 12:1123, 2022")
    url = "https://raabindata.com/free-data/"
    size = "Raabin-WBC fields with white-cell boxes"
    access = ("download the detection set from https://raabindata.com/free-data/ or export the "
              "Roboflow project in 'COCO JSON' format; unpack so that train/, valid/ and test/ "
              "lie in the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        folder = self.root / SPLIT_FOLDERS[split]
        path = folder / ANNOTATIONS
        if not path.is_file():
            raise DataError(f"{self.name}: {path} is missing. Expected layout:\n"
                            f"{self.layout()}")
        try:
            index = read_coco(path)
        except DataError as exc:
            report_error(self, path, exc)
            return
        for im in index.images:
            image = folder / im.file_name
            where = f"{path} (image {im.id} '{im.file_name}')"
            if not image.is_file():
                self.report(where, f"image file {image} is missing")
                continue
            size = image_size(self, image)
            if size is None:
                continue
            if size != (im.width, im.height):
                self.report(where, f"recorded as {im.width}x{im.height} but the file is "
                                   f"{size[0]}x{size[1]}")
                continue
            boxes, labels = [], []
            for ann in index.annotations(im.id):
                label = map_label(self, ann.category, LABEL_MAP, f"{path} (annotation {ann.id})")
                box = clip_box(self, ann.box, im.width, im.height,
                               f"{path} (annotation {ann.id})")
                if label is None or box is None:
                    break
                boxes.append(box)
                labels.append(label)
            else:
                yield UnifiedSample(
                    dataset=self.name, split=split, sample_id=Path(im.file_name).stem,
                    image_path=str(image), width=im.width, height=im.height,
                    boxes=np.asarray(boxes, np.float32).reshape(-1, 4), box_labels=labels,
                    meta={"kind": "field", "license": self.license},
                )

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        cats = [{"id": 0, "name": "WBC-cells", "supercategory": "none"}]
        cats += [{"id": i, "name": n, "supercategory": "WBC-cells"}
                 for i, n in enumerate(list(LABEL_MAP)[:5], start=1)]
        counts = {"train": 2, "val": 1, "test": 1}
        k = 0
        for split, n in counts.items():
            images, anns = [], []
            for i in range(n):
                name = f"{k + 1:05d}_jpg.rf.{k:08x}.jpg"
                boxes = ex.layout_boxes(160, 120, k % 3, size=40, seed=k)
                ex.write_smear(root / SPLIT_FOLDERS[split] / name, 160, 120, boxes,
                               ["wbc"] * len(boxes), seed=k)
                images.append({"id": i, "file_name": name, "width": 160, "height": 120})
                for b in boxes:
                    anns.append({"id": len(anns), "image_id": i, "category_id": 1 + k % 5,
                                 "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                                 "area": (b[2] - b[0]) * (b[3] - b[1]), "iscrowd": 0,
                                 "segmentation": []})
                k += 1
            ex.write_coco(root / SPLIT_FOLDERS[split] / ANNOTATIONS, images, anns, cats)
        return counts
