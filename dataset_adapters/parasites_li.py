"""Blood parasites and host cells (Li et al. 2020, DCTL): eight classes, folder per class."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._classification import CropClassifier, classes_of, write_crops
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import register_adapter
from unihema.data.sample import UnifiedSample

#: class folder -> canonical term (several spellings of one class are accepted)
LABEL_MAP: Dict[str, str] = {
    "babesia": "babesia",
    "leishmania": "leishmania",
    "plasmodium": "malaria parasite",
    "toxoplasma": "toxoplasma",
    "trichomonad": "trichomonad",
    "trichomonas": "trichomonad",
    "trypanosome": "trypanosome",
    "trypanosoma": "trypanosome",
    "RBC": "red blood cell",
    "RBCs": "red blood cell",
    "erythrocyte": "red blood cell",
    "leukocyte": "white blood cell",
    "leukocytes": "white blood cell",
    "WBC": "white blood cell",
}
SOURCE_CLASSES = ("babesia", "leishmania", "plasmodium", "toxoplasma", "trichomonad",
                  "trypanosome", "RBC", "leukocyte")


@register_adapter("parasites_li")
class ParasitesLi(CropClassifier):
    """Microscopic images of blood/tissue parasites and host cells, folder per class.

    <root>/
      [<group>/]<class>/*.{jpg,png,bmp,tif}   class: babesia, leishmania, plasmodium,
                                              toxoplasma, trichomonad, trypanosome, RBC,
                                              leukocyte (spellings in LABEL_MAP)

    Each image is labelled by its folder: a parasite (``plasmodium`` -> malaria parasite) or a
    host cell (RBC -> red blood cell, leukocyte -> white blood cell). Images are small patches
    (not always a single cell), so ``meta["kind"]`` is ``"crop"``. When no folder directly under
    the root is a class, class folders are looked for one level lower (``meta["group"]``). No
    official split, no patient ids: splits are ``unihema.data.splits.seeded_split`` (70/10/20,
    seed 0). The layout is taken from the paper and the catalogue only; it was not seen.
    """

    splits = ("train", "val", "test")
    label_map = LABEL_MAP
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "see source (data released with the paper for research use)"
    citation = ("Li S, Yang Q, Jiang H, Cortes-Vecino JA, Zhang Y. Parasitologist-level "
                "classification of apicomplexan parasites and host cell with deep cycle "
                "transfer learning (DCTL). Bioinformatics 36(16):4498-4505, 2020. "
                "doi:10.1093/bioinformatics/btaa513")
    url = "https://doi.org/10.1093/bioinformatics/btaa513"
    size = "about 35,000 images"
    access = "the data link of the article (supplementary data / the authors' repository)"

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        yield from self.load_folders(split, self.root, groups=True)

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        files = [f"{c}/{c.lower()}_{i:04d}.jpg" for c in SOURCE_CLASSES for i in (1, 2)]
        write_crops(root, files, size=(64, 64))
        ids = [f[: -len(".jpg")] for f in files]
        return count_splits(assign_splits(ids, seed=cls.split_seed), cls.splits)
