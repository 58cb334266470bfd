"""Raabin-WBC (Kouzehkanan et al. 2022): white blood cell crops, five classes, official splits."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._classification import CropClassifier, classes_of, write_crops
from unihema.data.catalog import DataError, register_adapter
from unihema.data.sample import UnifiedSample

#: class folder -> canonical term
LABEL_MAP: Dict[str, str] = {
    "Basophil": "basophil",
    "Eosinophil": "eosinophil",
    "Lymphocyte": "lymphocyte",
    "Monocyte": "monocyte",
    "Neutrophil": "neutrophil",
}

#: unihema split -> the source's split folder
SPLIT_FOLDERS: Dict[str, str] = {"train": "Train", "test": "TestA", "test_b": "TestB"}


@register_adapter("raabin_wbc")
class RaabinWbc(CropClassifier):
    """Raabin-WBC cropped double-labelled cells (575x575 JPEG), official Train / TestA / TestB.

    <root>/
      Train/<Class>/*.jpg      Class: Basophil, Eosinophil, Lymphocyte, Monocyte, Neutrophil
      TestA/<Class>/*.jpg      split "test" (same microscopes and cameras as Train)
      TestB/<Class>/*.jpg      split "test_b" (other microscope/camera; not every class)

    Split folders and class folders match case-insensitively (``train``, ``testa`` also work).
    The source's split is kept: ``train`` = Train, ``test`` = TestA, ``test_b`` = TestB; there
    is no validation split (hold out part of train in the training config when one is needed).
    The layout is taken from the Raabin-WBC paper and download page, not from the files.
    """

    splits = ("train", "test", "test_b")
    label_map = LABEL_MAP
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "CC BY-SA 4.0"
    citation = ("Kouzehkanan ZM, Saghari S, Tavakoli S, Rostami P, Abaszadeh M, Mirzadeh F, "
                "Satlsar ES, Gheidishahran M, Gorgi F, Mohammadi S, Hosseini R. A large dataset "
                "of white blood cells containing cell locations and types, along with segmented "
                "nuclei and cytoplasm. Scientific Reports 12:1123, 2022. "
                "doi:10.1038/s41598-021-04426-x")
    url = "https://raabindata.com/free-data/"
    size = "about 17,000 images"
    access = ("raabindata.com/free-data: 'Cropped images, double-labeled' archives Train, TestA "
              "and TestB (free registration); extract all three into the root")

    def split_folder(self, split: str) -> Path:
        want = SPLIT_FOLDERS[split].lower()
        for p in sorted(self.root.iterdir()):
            if p.is_dir() and p.name.lower() == want:
                return p
        raise DataError(f"{self.name}: split folder '{SPLIT_FOLDERS[split]}' not found in "
                        f"{self.root}. Expected layout:\n{self.layout()}")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        base = self.split_folder(split)
        for path, label, raw, _ in self.scan_classes(base):
            sample_id = path.relative_to(base).with_suffix("").as_posix()
            sample = self.crop(split, path, label, raw, sample_id)
            if sample is not None:
                yield sample

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        counts = {"train": 2, "test": 1, "test_b": 1}
        for split, n in counts.items():
            files = [f"{SPLIT_FOLDERS[split]}/{c}/{split}_{i:03d}.jpg"
                     for c in LABEL_MAP for i in range(n)]
            write_crops(root, files, size=(64, 64))
        return {s: n * len(LABEL_MAP) for s, n in counts.items()}
