"""AML-Cytomorphology_LMU (Matek et al. 2019): 18,365 blood cell crops in 15 classes."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._classification import CropClassifier, classes_of, write_crops
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import register_adapter
from unihema.data.sample import UnifiedSample

#: class code (folder name) -> canonical term
LABEL_MAP: Dict[str, str] = {
    "BAS": "basophil",
    "EBO": "erythroblast",
    "EOS": "eosinophil",
    "KSC": "smudge cell",
    "LYA": "atypical lymphocyte",
    "LYT": "lymphocyte",
    "MMZ": "metamyelocyte",
    "MOB": "monoblast",
    "MON": "monocyte",
    "MYB": "myelocyte",
    "MYO": "myeloblast",
    "NGB": "band neutrophil",
    "NGS": "segmented neutrophil",
    "PMB": "bilobed promyelocyte",
    "PMO": "promyelocyte",
}

FOLDER = "AML-Cytomorphology_LMU"


@register_adapter("aml_lmu")
class AmlLmu(CropClassifier):
    """AML-Cytomorphology_LMU: 400x400 TIFF crops of peripheral blood smears, folder per class.

    <root>/
      AML-Cytomorphology_LMU/          (root may also be this folder itself)
        <CODE>/<CODE>_<nnnn>.tiff      CODE one of the 15 keys of LABEL_MAP

    Labels come from the class folder (``LABEL_MAP``: BAS basophil, ..., MYO myeloblast, PMB
    bilobed promyelocyte). The release's re-annotation table (``annotations.dat``) is not read.
    The source has no official split and no patient ids in the file names: splits are
    ``unihema.data.splits.seeded_split`` (70/10/20, seed 0) over the path relative to the class
    root. The layout is taken from the TCIA description and the catalogue, not from the files.
    """

    splits = ("train", "val", "test")
    label_map = LABEL_MAP
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "CC BY 3.0"
    citation = ("Matek C, Schwarz S, Spiekermann K, Marr C. Human-level recognition of blast "
                "cells in acute myeloid leukaemia with convolutional neural networks. Nature "
                "Machine Intelligence 1:538-544, 2019. doi:10.1038/s42256-019-0101-9. Data: The "
                "Cancer Imaging Archive, doi:10.7937/tcia.2019.36f5o9ld")
    url = "https://doi.org/10.7937/tcia.2019.36f5o9ld"
    size = "18,365 images"
    access = ("The Cancer Imaging Archive (TCIA), collection AML-Cytomorphology_LMU: download "
              "with the NBIA Data Retriever or the TCIA Aspera link (no login)")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        inner = self.root / FOLDER
        yield from self.load_folders(split, inner if inner.is_dir() else self.root)

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        files = [f"{code}/{code}_{i:04d}.tiff" for code in LABEL_MAP for i in (1,)]
        write_crops(root / FOLDER, files, size=(64, 64))
        ids = [f[: -len(".tiff")] for f in files]
        return count_splits(assign_splits(ids, seed=cls.split_seed), cls.splits)
