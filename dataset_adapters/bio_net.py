"""Bio-Net: healthy-donor smears with red cell, white cell and platelet boxes, plus white-cell
crops by type."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._detection import yolo_samples
from dataset_adapters._detseg import image_size, map_label
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats import scan_class_folders
from unihema.data.sample import UnifiedSample

#: YOLO class name -> canonical term (detection)
DETECT_MAP: Dict[str, str] = {
    "RBC": "red blood cell",
    "WBC": "white blood cell",
    "Platelet": "platelet",
    "Platelets": "platelet",
}
#: crop class folder -> canonical term (classification)
CLASSIFY_MAP: Dict[str, str] = {
    "Neutrophil": "neutrophil",
    "Lymphocyte": "lymphocyte",
    "Monocyte": "monocyte",
    "Eosinophil": "eosinophil",
    "Basophil": "basophil",
}


@register_adapter("bio_net")
class BioNet(DatasetAdapter):
    """Bio-Net peripheral blood smear dataset (healthy donors), detection and crop parts.

    <root>/
      detection/
        classes.txt | data.yaml                 class names (RBC, WBC, Platelets)
        images/{train,val,test}/<name>.jpg      field image
        labels/{train,val,test}/<name>.txt      YOLO "cls cx cy w h", normalised
      classification/<Class>/<name>.jpg         white-cell crop; Class one of Neutrophil,
                                                Lymphocyte, Monocyte, Eosinophil, Basophil

    Detection splits are the official split folders (``valid`` read as val; without split
    folders ``seeded_split`` 70/10/20, seed 0). The crops have no official split: they are
    split by ``seeded_split`` (70/10/20, seed 0) over their path. Either part may be absent.
    The layout (folder names, class spellings) is taken from the article and the catalogue,
    not from the files; ``data check`` names any other label or folder.
    """

    tasks = ("detect", "classify")
    splits = ("train", "val", "test")
    classes = {"detect": ("red blood cell", "white blood cell", "platelet"),
               "classify": tuple(CLASSIFY_MAP.values())}
    license = "see source (cite the article)"
    citation = ("Bio-Net dataset: peripheral blood smear images of healthy donors with cell "
                "annotations. Blood Cells, Molecules and Diseases, 2024")
    #: the catalogue names the article, not a web address
    url = "Blood Cells, Molecules and Diseases 2024 (data availability statement)"
    size = "field images with RBC/WBC/platelet boxes and white-cell crops"
    access = ("follow the data availability statement of the article; unpack so that "
              "detection/ and classification/ lie in the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        det, cls_dir = self.root / "detection", self.root / "classification"
        if not det.is_dir() and not cls_dir.is_dir():
            raise DataError(f"{self.name}: neither detection/ nor classification/ in "
                            f"{self.root}. Expected layout:\n{self.layout()}")
        if det.is_dir():
            yield from yolo_samples(self, split, DETECT_MAP, base=det)
        if cls_dir.is_dir():
            yield from self._crops(split, cls_dir)

    def _crops(self, split: str, base: Path) -> Iterable[UnifiedSample]:
        items = scan_class_folders(base)
        keys = [p.relative_to(base).as_posix() for p, _ in items]
        assignment = assign_splits(keys)
        for (path, folder), key in zip(items, keys):
            if assignment[key] != split:
                continue
            label = map_label(self, folder, CLASSIFY_MAP, path)
            size = image_size(self, path) if label is not None else None
            if size is None:
                continue
            yield UnifiedSample(
                dataset=self.name, split=split, sample_id=f"classification/{key}",
                image_path=str(path), width=size[0], height=size[1], label=label,
                label_set=list(self.classes["classify"]),
                meta={"kind": "crop", "raw_label": folder, "license": self.license},
            )

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        det = root / "detection"
        (det / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
        (det / "classes.txt").write_text("RBC\nWBC\nPlatelets\n", encoding="utf-8")
        counts = {"train": 2, "val": 1, "test": 1}
        k = 0
        for split, n in counts.items():
            for _ in range(n):
                boxes = ex.layout_boxes(160, 120, 5, size=22, seed=k)
                ids = [0, 0, 0, 1, 2]
                names = ["rbc", "rbc", "rbc", "wbc", "platelet"]
                ex.write_smear(det / "images" / split / f"BN_{k:04d}.jpg", 160, 120, boxes,
                               names, seed=k)
                ex.write_yolo(det / "labels" / split / f"BN_{k:04d}.txt",
                              [ex.yolo_row(c, b, 160, 120) for c, b in zip(ids, boxes)])
                k += 1
        keys = []
        for folder in CLASSIFY_MAP:
            for i in range(2):
                ex.write_crop(root / "classification" / folder / f"{folder[:3]}_{i}.jpg", 64,
                              "wbc", seed=i)
                keys.append(f"{folder}/{folder[:3]}_{i}.jpg")
        crops = count_splits(assign_splits(keys), cls.splits)
        return {s: counts[s] + crops[s] for s in cls.splits}
