"""KRD-WBC: 601 white-cell images of five types, each with a mask of the cell."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._detseg import map_label, mask_sample, mirrored_pairs, split_pairs
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import DatasetAdapter, register_adapter
from unihema.data.sample import UnifiedSample

#: class folder -> canonical term
LABEL_MAP: Dict[str, str] = {
    "Neutrophil": "neutrophil",
    "Lymphocyte": "lymphocyte",
    "Monocyte": "monocyte",
    "Eosinophil": "eosinophil",
    "Basophil": "basophil",
}
#: mask pixel value -> canonical class
MASK_VALUES: Dict[int, str] = {0: "background", 1: "white blood cell", 255: "white blood cell"}


@register_adapter("krd_wbc")
class KrdWbc(DatasetAdapter):
    """KRD-WBC (Mendeley Data jzdj6h7gms): white-cell images and masks, folder per class.

    <root>/
      images/<Class>/<name>.jpg      white-cell image; Class one of Neutrophil, Lymphocyte,
                                     Monocyte, Eosinophil, Basophil
      masks/<Class>/<name>.png       mask of the same name and size: 0 background, 255 (or 1)
                                     the white cell

    Each record is segmented (mask) and classified (its class folder). There is no official
    split and no patient id: splits are ``seeded_split`` (70/10/20, seed 0) over
    ``<Class>/<name>``. The folder names and the mask coding are taken from the dataset's
    description (documentation), not from the files; ``data check`` lists any other value.
    """

    tasks = ("segment", "classify")
    splits = ("train", "val", "test")
    classes = {"segment": ("background", "white blood cell"),
               "classify": tuple(LABEL_MAP.values())}
    license = "CC BY 4.0"
    citation = ("KRD-WBC: white blood cell images of five types with segmentation masks "
                "(Kurdistan region). Mendeley Data, dataset jzdj6h7gms (cite the dataset page)")
    url = "https://data.mendeley.com/datasets/jzdj6h7gms"
    size = "601 images"
    access = ("Mendeley Data jzdj6h7gms: 'Download All' (no login); unpack so that images/ and "
              "masks/ lie in the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        pairs = mirrored_pairs(self, self.root / "images", self.root / "masks")
        for image, mask, key in split_pairs(pairs, split):
            folder = key.split("/", 1)[0]
            label = map_label(self, folder, LABEL_MAP, image.parent)
            if label is None:
                continue
            sample = mask_sample(self, split, image, mask, MASK_VALUES, key, label=label,
                                 meta={"raw_label": folder})
            if sample is not None:
                yield sample

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        keys = []
        for c, folder in enumerate(LABEL_MAP):
            for i in range(2):
                name = f"{folder[:2].upper()}_{i + 1:03d}"
                ex.write_crop(root / "images" / folder / f"{name}.jpg", 64, "wbc", seed=c + i)
                ex.write_mask(root / "masks" / folder / f"{name}.png",
                              ex.ellipse_mask(64, 64, [(10, 10, 54, 54)], [255]))
                keys.append(f"{folder}/{name}")
        return count_splits(assign_splits(keys), cls.splits)
