"""Thalassemia red cell crops (Tyas et al. 2022): nine erythrocyte types, folder per class."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._classification import CropClassifier, classes_of, write_crops
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import register_adapter
from unihema.data.sample import UnifiedSample

#: class folder -> canonical term. Two source classes share a term: "pencil" cells are the long,
#: narrow elliptocytes of thalassemia, and the vocabulary has no separate term for them, so both
#: become "elliptocyte" (the source's class stays in ``meta["raw_label"]``).
LABEL_MAP: Dict[str, str] = {
    "elliptocyte": "elliptocyte",
    "pencil": "elliptocyte",
    "pencil cell": "elliptocyte",
    "teardrop": "teardrop cell",
    "teardrop cell": "teardrop cell",
    "acanthocyte": "acanthocyte",
    "stomatocyte": "stomatocyte",
    "target": "target cell",
    "target cell": "target cell",
    "spherocyte": "spherocyte",
    "hypochromic": "hypochromic cell",
    "hypochromic cell": "hypochromic cell",
    "normal": "red blood cell",
    "normal cell": "red blood cell",
}
#: the nine class folders as the article names them (used by the example)
SOURCE_CLASSES = ("elliptocyte", "pencil", "teardrop", "acanthocyte", "stomatocyte", "target",
                  "spherocyte", "hypochromic", "normal")


@register_adapter("thalassemia_pbs")
class ThalassemiaPbs(CropClassifier):
    """Erythrocyte dataset of thalassemia cases: single red cell crops, folder per class.

    <root>/
      [<group>/]<class>/*.{jpg,png,bmp}   class: elliptocyte, pencil, teardrop, acanthocyte,
                                          stomatocyte, target, spherocyte, hypochromic, normal
                                          (case and "_"/"-" tolerated; other accepted
                                          spellings such as "target cell" in LABEL_MAP)

    When no folder directly under the root is a class, the class folders are looked for one
    level lower (the group folder is kept in ``meta["group"]``). ``pencil`` and ``elliptocyte``
    both map to ``elliptocyte`` (see ``LABEL_MAP``), so the classifier sees eight classes. The
    source has no official split and no patient ids: splits are
    ``unihema.data.splits.seeded_split`` (70/10/20, seed 0). The layout (folder per class,
    folder names) is taken from the article and the catalogue only; it was not seen.
    """

    splits = ("train", "val", "test")
    label_map = LABEL_MAP
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "CC BY 4.0"
    citation = ("Tyas DA, Hartati S, Harjoko A, Ratnaningsih T. Erythrocyte (red blood cell) "
                "dataset in thalassemia case. Data in Brief 41:107886, 2022. PMC8857444")
    url = "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC8857444/"
    size = "about 7,100 images"
    access = "the data repository linked from the Data in Brief article (PMC8857444)"

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        yield from self.load_folders(split, self.root, groups=True)

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        files = [f"{c}/{c}_{i}.jpg" for c in SOURCE_CLASSES for i in (1, 2)]
        write_crops(root, files, size=(64, 64))
        ids = [f[: -len(".jpg")] for f in files]
        return count_splits(assign_splits(ids, seed=cls.split_seed), cls.splits)
