"""NuClick white-cell crops with a mask of the cell (2,933 crops)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._detseg import mask_sample, mirrored_pairs
from unihema.data.catalog import DatasetAdapter, register_adapter
from unihema.data.sample import UnifiedSample

#: mask pixel value -> canonical class (the cell is stored as 255, or as 1 by some exports)
MASK_VALUES: Dict[int, str] = {0: "background", 1: "white blood cell", 255: "white blood cell"}
#: split -> folder of the release
SPLIT_FOLDERS = {"train": "Train", "val": "Validation"}


@register_adapter("nuclick_wbc")
class NuClickWbc(DatasetAdapter):
    """NuClick hematology (white-cell) set (github navidstuv/NuClick).

    <root>/
      Train/images/<name>.png          white-cell crop (RGB)
      Train/masks/<name>.png           mask of the same name and size: 0 background,
                                       255 (or 1) the white cell
      Validation/images/<name>.png     (read as split val)
      Validation/masks/<name>.png

    Splits are the release's Train and Validation folders (2,689 + 244 crops). The layout
    and the mask coding are taken from the repository's documentation, not from the files;
    ``data check`` lists any other mask value it finds.
    """

    tasks = ("segment",)
    splits = ("train", "val")
    classes = {"segment": ("background", "white blood cell")}
    license = "see source (research use; cite the paper)"
    citation = ("Koohbanani NA, Jahanifar M, Tajadin NZ, Rajpoot N. NuClick: A Deep Learning "
                "Framework for Interactive Segmentation of Microscopic Images. Medical Image "
                "Analysis 65:101771, 2020")
    url = "https://github.com/navidstuv/NuClick"
    size = "2,933 crops"
    access = ("follow the dataset link in the NuClick repository README; unpack so that Train/ "
              "and Validation/ lie in the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        folder = self.root / SPLIT_FOLDERS[split]
        for image, mask, key in mirrored_pairs(self, folder / "images", folder / "masks"):
            sample = mask_sample(self, split, image, mask, MASK_VALUES, key)
            if sample is not None:
                yield sample

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        counts = {"train": 3, "val": 1}
        k = 0
        for split, n in counts.items():
            for _ in range(n):
                name = f"{k:05d}"
                ex.write_crop(root / SPLIT_FOLDERS[split] / "images" / f"{name}.png", 64,
                              "wbc", seed=k)
                ex.write_mask(root / SPLIT_FOLDERS[split] / "masks" / f"{name}.png",
                              ex.ellipse_mask(64, 64, [(10, 10, 54, 54)], [255]))
                k += 1
        return counts
