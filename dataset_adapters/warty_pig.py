"""Warty pig blood cells (IEEE DataPort): 2,871 single-cell crops in four classes."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._classification import CropClassifier, classes_of, write_crops
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import register_adapter
from unihema.data.sample import UnifiedSample

#: class folder -> canonical term (assumed: the four leukocyte types of the release)
LABEL_MAP: Dict[str, str] = {
    "eosinophil": "eosinophil",
    "lymphocyte": "lymphocyte",
    "monocyte": "monocyte",
    "neutrophil": "neutrophil",
}


@register_adapter("warty_pig")
class WartyPig(CropClassifier):
    """Warty pig (Sus) blood smear cells: single-cell crops, folder per class.

    <root>/
      [<group>/]<class>/*.{jpg,png,bmp,tif}   class: eosinophil, lymphocyte, monocyte,
                                              neutrophil (case and plural "s" tolerated)

    Doubt: the catalogue gives "4 classes" without naming them; the four leukocyte types above
    are an assumption. Any other class folder is reported by ``unihema data check`` with the
    number of images it holds and the expected names, so a different class set shows at once
    (extend ``LABEL_MAP`` then). When no folder directly under the root is a class, class
    folders are looked for one level lower (``meta["group"]``). No official split, no patient
    ids: splits are ``unihema.data.splits.seeded_split`` (70/10/20, seed 0). Animal blood:
    ``meta["species"]`` is ``"warty pig"``. The layout is taken from the catalogue only.
    """

    splits = ("train", "val", "test")
    label_map = {**LABEL_MAP, **{f"{k}s": v for k, v in LABEL_MAP.items()}}
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "see source (IEEE DataPort dataset terms)"
    citation = ("Warty pig blood cell image dataset (2,871 single-cell images, 4 classes). "
                "IEEE DataPort; cite the DOI given on the dataset page")
    url = "https://ieee-dataport.org/"
    size = "2,871 images"
    access = "IEEE DataPort (free account login); search the portal for the warty pig blood cells"

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        for s in self.load_folders(split, self.root, groups=True):
            s.meta["species"] = "warty pig"
            yield s

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        files = [f"{c.capitalize()}s/{c[:3]}_{i:03d}.png" for c in LABEL_MAP for i in (1, 2, 3)]
        write_crops(root, files, size=(64, 64))
        ids = [f[: -len(".png")] for f in files]
        return count_splits(assign_splits(ids, seed=cls.split_seed), cls.splits)
