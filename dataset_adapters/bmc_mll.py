"""Bone marrow cytomorphology (Matek et al. 2021): 171,373 crops in 21 classes."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._classification import CropClassifier, classes_of, write_crops
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import register_adapter
from unihema.data.sample import UnifiedSample

#: class code (folder name) -> canonical term
LABEL_MAP: Dict[str, str] = {
    "ABE": "abnormal eosinophil",
    "ART": "artefact",
    "BAS": "basophil",
    "BLA": "blast",
    "EBO": "erythroblast",
    "EOS": "eosinophil",
    "FGC": "faggot cell",
    "HAC": "hairy cell",
    "KSC": "smudge cell",
    "LYI": "immature lymphocyte",
    "LYT": "lymphocyte",
    "MMZ": "metamyelocyte",
    "MON": "monocyte",
    "MYB": "myelocyte",
    "NGB": "band neutrophil",
    "NGS": "segmented neutrophil",
    "NIF": "unidentified cell",
    "OTH": "other cell",
    "PEB": "proerythroblast",
    "PLM": "plasma cell",
    "PMO": "promyelocyte",
}

FOLDER = "bone_marrow_cell_dataset"


@register_adapter("bmc_mll")
class BmcMll(CropClassifier):
    """Bone marrow cell dataset (MLL / Helmholtz Munich): 250x250 JPEG crops, folder per class.

    <root>/
      bone_marrow_cell_dataset/        (root may also be this folder itself)
        <CODE>/<CODE>_<nnnnn>.jpg              small classes
        <CODE>/<range>/<CODE>_<nnnnn>.jpg      large classes are split into sub-folders
                                               (e.g. NGS/0001-1000/); any depth is read

    The 21 codes and their canonical terms are in ``LABEL_MAP`` (ABE abnormal eosinophil, ART
    artefact, ..., NIF not identifiable -> unidentified cell, OTH other cell). The release has
    no official split and no patient ids: splits are ``unihema.data.splits.seeded_split``
    (70/10/20, seed 0) over the path relative to the class root. The layout is taken from the
    TCIA description and the catalogue, not from the files themselves.
    """

    splits = ("train", "val", "test")
    label_map = LABEL_MAP
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "CC BY 4.0"
    citation = ("Matek C, Krappe S, Muenzenmayer C, Haferlach T, Marr C. Highly accurate "
                "differentiation of bone marrow cell morphologies using deep neural networks on "
                "a large image data set. Blood 138(20):1917-1927, 2021. "
                "doi:10.1182/blood.2020010568. Data: The Cancer Imaging Archive, "
                "doi:10.7937/TCIA.AXH3-T579")
    url = "https://doi.org/10.7937/TCIA.AXH3-T579"
    size = "171,373 images"
    access = ("The Cancer Imaging Archive (TCIA), collection Bone-Marrow-Cytomorphology_MLL_"
              "Helmholtz_Fraunhofer: download the zip with the TCIA/Aspera link (no login)")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        inner = self.root / FOLDER
        yield from self.load_folders(split, inner if inner.is_dir() else self.root)

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        files = [f"{code}/{code}_{i:05d}.jpg" for code in LABEL_MAP for i in (1,)]
        files += [f"NGS/0001-1000/NGS_{i:05d}.jpg" for i in (2, 3)]
        write_crops(root / FOLDER, files, size=(64, 64))
        ids = [f[: -len(".jpg")] for f in files]
        return count_splits(assign_splits(ids, seed=cls.split_seed), cls.splits)
