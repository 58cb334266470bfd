"""Raabin-WBC ground truth: white-cell images with nucleus and cytoplasm masks (~1,145)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._detseg import mask_sample, mirrored_pairs, split_pairs
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import DatasetAdapter, register_adapter
from unihema.data.sample import UnifiedSample

#: mask pixel value -> canonical class
MASK_VALUES: Dict[int, str] = {0: "background", 128: "cytoplasm", 255: "nucleus"}
IMAGES, MASKS = "Original_imgs", "Ground_Truth"


@register_adapter("raabin_wbc_gt")
class RaabinWbcGt(DatasetAdapter):
    """Raabin-WBC ground-truth subset ("GrTh"), from raabindata.com.

    <root>/
      Original_imgs/[<Class>/]<name>.jpg     white-cell image (class folders optional; the
                                             folder is kept in meta["raw_label"])
      Ground_Truth/[<Class>/]<name>.png      mask of the same relative path and size:
                                             0 background, 128 cytoplasm, 255 nucleus

    There is no official split for this subset and no patient id: splits are
    ``seeded_split`` (70/10/20, seed 0) over the relative path. The folder names and the
    mask coding (one mask holding both structures) are taken from the Raabin-WBC paper's
    description, not from the files; ``data check`` lists any other mask value it finds.
    """

    tasks = ("segment",)
    splits = ("train", "val", "test")
    classes = {"segment": ("background", "cytoplasm", "nucleus")}
    license = "CC BY-SA 4.0"
    citation = ("Kouzehkanan ZM, et al. A large dataset of white blood cells containing cell "
                "locations and types, along with segmented nuclei and cytoplasm. Scientific "
                "Reports 12:1123, 2022")
    url = "https://raabindata.com/free-data/"
    size = "about 1,145 images"
    access = ("download the ground-truth archive (GrTh) from https://raabindata.com/free-data/; "
              "unpack so that Original_imgs/ and Ground_Truth/ lie in the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        pairs = mirrored_pairs(self, self.root / IMAGES, self.root / MASKS)
        for image, mask, key in split_pairs(pairs, split):
            parts = key.split("/")
            meta = {"raw_label": parts[0]} if len(parts) > 1 else {}
            sample = mask_sample(self, split, image, mask, MASK_VALUES, key, meta=meta)
            if sample is not None:
                yield sample

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        keys = []
        for c, folder in enumerate(("Neutrophil", "Lymphocyte")):
            for i in range(5):
                name = f"{1000 + 10 * c + i}"
                ex.write_crop(root / IMAGES / folder / f"{name}.jpg", 72, "wbc", seed=c + i)
                ex.write_mask(root / MASKS / folder / f"{name}.png",
                              ex.ellipse_mask(72, 72, [(8, 8, 64, 64)], [128],
                                              nucleus_value=255))
                keys.append(f"{folder}/{name}")
        return count_splits(assign_splits(keys), cls.splits)
