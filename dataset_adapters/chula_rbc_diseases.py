"""Chula RBC diseases: smear photos labelled with the patient's red-cell disease."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._detseg import class_folder_samples
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats import scan_class_folders
from unihema.data.sample import UnifiedSample

#: disease folder -> canonical term (abbreviations and spelled-out names both accepted)
LABEL_MAP: Dict[str, str] = {
    "HE": "hereditary elliptocytosis",
    "Hereditary elliptocytosis": "hereditary elliptocytosis",
    "HS": "hereditary spherocytosis",
    "Hereditary spherocytosis": "hereditary spherocytosis",
    "IDA": "iron deficiency anemia",
    "Iron deficiency anemia": "iron deficiency anemia",
    "Megaloblastic anemia": "megaloblastic anemia",
    "Thalassemia": "thalassemia",
}
FOLDER = "RBC Diseases"


@register_adapter("chula_rbc_diseases")
class ChulaRBCDiseases(DatasetAdapter):
    """The disease part of github Chula-PIC-Lab/Chula-RBC-12-Dataset, as cloned.

    <root>/                          (the clone; the root may also be the folder below)
      RBC Diseases/<disease>/<name>.JPG   smear photo; disease folder one of HE (hereditary
                                          elliptocytosis), HS (hereditary spherocytosis),
                                          iron deficiency anemia (or IDA), megaloblastic
                                          anemia, thalassemia (case and _ / - / space free)

    Each photo is classified at smear level by its folder. There is no official split and no
    patient id: splits are ``seeded_split`` (70/10/20, seed 0) over ``<disease>/<name>``
    (photos of one patient may fall into different splits: the source does not say which
    photos share a patient). The folder names are taken from the repository's README
    (documentation), not from the files; ``data check`` names any other folder.
    """

    tasks = ("classify",)
    splits = ("train", "val", "test")
    classes = {"classify": tuple(dict.fromkeys(LABEL_MAP.values()))}
    license = "MIT"
    citation = ("Naruenatthanaset K, Chalidabhongse TH, Palasuwan D, Anantrasirichai N, "
                "Palasuwan A. Red Blood Cell Segmentation with Overlapping Cell Separation and "
                "Classification on Imbalanced Dataset. Scientific Reports, 2023")
    url = "https://github.com/Chula-PIC-Lab/Chula-RBC-12-Dataset"
    size = "smear photos of five red-cell diseases"
    access = ("git clone https://github.com/Chula-PIC-Lab/Chula-RBC-12-Dataset (the root is the "
              "clone, holding 'RBC Diseases/')")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        base = self.root / FOLDER if (self.root / FOLDER).is_dir() else self.root
        items = scan_class_folders(base)
        if not items:
            raise DataError(f"{self.name}: no images in disease folders under {base}. "
                            f"Expected layout:\n{self.layout()}")
        yield from class_folder_samples(self, split, base, LABEL_MAP, kind="field")

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        keys = []
        for d, folder in enumerate(("HE", "HS", "Iron deficiency anemia",
                                    "Megaloblastic anemia", "Thalassemia")):
            for i in range(2):
                boxes = ex.layout_boxes(160, 120, 5, size=24, seed=d * 2 + i)
                ex.write_smear(root / FOLDER / folder / f"IMG_{d}{i:03d}.JPG", 160, 120, boxes,
                               ["rbc"] * 5, seed=d * 2 + i)
                keys.append(f"{folder}/IMG_{d}{i:03d}")
        return count_splits(assign_splits(keys), cls.splits)
