"""RV-PBS peripheral blood smear cells (ESWA 2024, figshare 23804523), folder per class."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._classification import CropClassifier, classes_of, write_crops
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import register_adapter
from unihema.data.sample import UnifiedSample

#: class folder -> canonical term (assumed class set; several spellings accepted)
LABEL_MAP: Dict[str, str] = {
    "basophil": "basophil",
    "eosinophil": "eosinophil",
    "lymphocyte": "lymphocyte",
    "monocyte": "monocyte",
    "neutrophil": "neutrophil",
    "ig": "immature granulocyte",
    "immature granulocyte": "immature granulocyte",
    "erythroblast": "erythroblast",
    "platelet": "platelet",
}
SOURCE_CLASSES = ("basophil", "eosinophil", "lymphocyte", "monocyte", "neutrophil", "ig",
                  "erythroblast", "platelet")


@register_adapter("rv_pbs")
class RvPbs(CropClassifier):
    """RV-PBS: peripheral blood smear single-cell images, folder per class.

    <root>/
      [<group>/]<class>/*.{jpg,png,bmp,tif}   class: basophil, eosinophil, lymphocyte,
                                              monocyte, neutrophil, ig / immature granulocyte,
                                              erythroblast, platelet (case, "_"/"-" and plural
                                              "s" tolerated)

    Doubt: the catalogue does not list the classes; the set above (the PBC-style peripheral
    blood classes) is an assumption. Any other class folder is reported by ``unihema data
    check`` with its image count and the expected names (extend ``LABEL_MAP`` then). When no
    folder directly under the root is a class, class folders are looked for one level lower
    (``meta["group"]``). No official split, no patient ids: splits are
    ``unihema.data.splits.seeded_split`` (70/10/20, seed 0). Layout from the catalogue only.
    """

    splits = ("train", "val", "test")
    label_map = {**LABEL_MAP, **{f"{k}s": v for k, v in LABEL_MAP.items()}}
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "CC BY 4.0"
    citation = ("RV-PBS peripheral blood smear dataset. Expert Systems with Applications, 2024; "
                "data: figshare, doi:10.6084/m9.figshare.23804523")
    url = "https://doi.org/10.6084/m9.figshare.23804523"
    access = "figshare article 23804523: 'Download all' (no login); extract into the root"

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        yield from self.load_folders(split, self.root, groups=True)

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        files = [f"{c}/{c}_{i:03d}.jpg" for c in SOURCE_CLASSES for i in (1, 2)]
        write_crops(root, files, size=(64, 64))
        ids = [f[: -len(".jpg")] for f in files]
        return count_splits(assign_splits(ids, seed=cls.split_seed), cls.splits)
