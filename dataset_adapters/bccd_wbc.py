"""BCCD white-cell crops (Kaggle "Blood Cell Images"): four classes, augmented, official split."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._classification import CropClassifier, classes_of, write_crops
from unihema.data.catalog import DataError, register_adapter
from unihema.data.sample import UnifiedSample

#: class folder -> canonical term
LABEL_MAP: Dict[str, str] = {
    "EOSINOPHIL": "eosinophil",
    "LYMPHOCYTE": "lymphocyte",
    "MONOCYTE": "monocyte",
    "NEUTROPHIL": "neutrophil",
}

#: unihema split -> the source's split folder
SPLIT_FOLDERS: Dict[str, str] = {"train": "TRAIN", "test": "TEST"}
IMAGES = Path("dataset2-master") / "images"


@register_adapter("bccd_wbc")
class BccdWbc(CropClassifier):
    """Kaggle "Blood Cell Images": 320x240 JPEG crops around one white cell, augmented.

    <root>/
      dataset2-master/images/          (root may also be dataset2-master/ or images/ itself)
        TRAIN/<CLASS>/_<n>_<k>.jpeg    CLASS: EOSINOPHIL, LYMPHOCYTE, MONOCYTE, NEUTROPHIL
        TEST/<CLASS>/_<n>_<k>.jpeg
        TEST_SIMPLE/<CLASS>/...        not read (a small un-augmented subset of TEST)

    The official TRAIN / TEST split is kept (``train``, ``test``). Images are augmentations of
    the BCCD fields (rotations, flips): augmented copies of one original share the ``_<n>_``
    part of their names, which is kept in ``meta["source_image"]``. The ``dataset-master``
    folder of the same download (BCCD VOC annotations) is read by the ``bccd`` adapter. The
    layout is taken from the Kaggle page and the catalogue, not from the files themselves.
    """

    splits = ("train", "test")
    label_map = LABEL_MAP
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "MIT"
    citation = ("Mooney P. Blood Cell Images (Kaggle dataset paultimothymooney/blood-cells), "
                "augmented white-cell crops of the BCCD dataset (github Shenggan/BCCD_Dataset), "
                "2018")
    url = "https://www.kaggle.com/datasets/paultimothymooney/blood-cells"
    size = "12,500 images"
    access = ("Kaggle dataset paultimothymooney/blood-cells (Kaggle login): download and unzip; "
              "the root holds dataset2-master/")

    def images_folder(self) -> Path:
        for cand in (self.root / IMAGES, self.root / "images", self.root):
            if any((cand / f).is_dir() for f in SPLIT_FOLDERS.values()):
                return cand
        raise DataError(f"{self.name}: no TRAIN/TEST folders under {self.root / IMAGES}. "
                        f"Expected layout:\n{self.layout()}")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        base = self.images_folder() / SPLIT_FOLDERS[split]
        for path, label, raw, _ in self.scan_classes(base):
            sample_id = path.relative_to(base).with_suffix("").as_posix()
            parts = path.stem.split("_")
            meta = {"source_image": parts[1]} if len(parts) == 3 and parts[0] == "" else {}
            sample = self.crop(split, path, label, raw, sample_id, **meta)
            if sample is not None:
                yield sample

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        counts = {"train": 2, "test": 1}
        for split, n in counts.items():
            files = [f"{IMAGES.as_posix()}/{SPLIT_FOLDERS[split]}/{c}/_{j}_{1000 + i}.jpeg"
                     for j, c in enumerate(LABEL_MAP) for i in range(n)]
            write_crops(root, files, size=(80, 60))
        return {s: n * len(LABEL_MAP) for s, n in counts.items()}
