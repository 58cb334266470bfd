"""PBC (Acevedo et al. 2020): 17,092 peripheral blood cell crops in eight classes."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._classification import CropClassifier, classes_of, write_crops
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import register_adapter
from unihema.data.sample import UnifiedSample

#: class folder -> canonical term ("ig" holds promyelocytes, myelocytes and metamyelocytes)
LABEL_MAP: Dict[str, str] = {
    "basophil": "basophil",
    "eosinophil": "eosinophil",
    "erythroblast": "erythroblast",
    "ig": "immature granulocyte",
    "lymphocyte": "lymphocyte",
    "monocyte": "monocyte",
    "neutrophil": "neutrophil",
    "platelet": "platelet",
}

FOLDER = "PBC_dataset_normal_DIB"

#: class folder -> file-name prefix of the example (the source names files like BA_100102.jpg)
_PREFIX = {"basophil": "BA", "eosinophil": "EO", "erythroblast": "ERB", "ig": "MY",
           "lymphocyte": "LY", "monocyte": "MO", "neutrophil": "SNE", "platelet": "PLATELET"}


def pbc_folder(root: Path) -> Path:
    """``root/PBC_dataset_normal_DIB`` when present, else ``root`` itself (the folder that
    holds the eight class folders)."""
    inner = root / FOLDER
    return inner if inner.is_dir() else root


@register_adapter("pbc_acevedo")
class PbcAcevedo(CropClassifier):
    """PBC dataset normal DIB: single-cell JPEG crops (360x363 px, a few differ), folder per class.

    <root>/
      PBC_dataset_normal_DIB/          (root may also be this folder itself)
        basophil/BA_<n>.jpg
        eosinophil/EO_<n>.jpg
        erythroblast/ERB_<n>.jpg
        ig/{MY,MMY,PMY,IG}_<n>.jpg     immature granulocytes (myelo-, metamyelo-, promyelocytes)
        lymphocyte/LY_<n>.jpg
        monocyte/MO_<n>.jpg
        neutrophil/{SNE,BNE,NEUTROPHIL}_<n>.jpg
        platelet/PLATELET_<n>.jpg

    Labels come from the class folder (map in ``LABEL_MAP``; the file-name prefixes are not
    read). The source has no official split and no patient ids: splits are
    ``unihema.data.splits.seeded_split`` (70/10/20, seed 0) over the file path relative to the
    class root. The layout is taken from the Data in Brief article and the catalogue, not from
    the files themselves.
    """

    splits = ("train", "val", "test")
    label_map = LABEL_MAP
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "CC BY 4.0"
    citation = ("Acevedo A, Merino A, Alferez S, Molina A, Boldu L, Rodellar J. A dataset of "
                "microscopic peripheral blood cell images for development of automatic "
                "recognition systems. Data in Brief 30:105474, 2020. "
                "doi:10.1016/j.dib.2020.105474")
    url = "https://data.mendeley.com/datasets/snkd93bnjr/1"
    size = "17,092 images"
    access = ("Mendeley Data snkd93bnjr: 'Download All' on the dataset page (no login); unzip "
              "so that PBC_dataset_normal_DIB/ lies in the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        yield from self.load_folders(split, pbc_folder(self.root))

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        files = [f"{folder}/{_PREFIX[folder]}_{100 + i}.jpg"
                 for folder in LABEL_MAP for i in range(2)]
        write_crops(root / FOLDER, files, size=(72, 73))
        ids = [f[: -len(".jpg")] for f in files]
        return count_splits(assign_splits(ids, seed=cls.split_seed), cls.splits)
