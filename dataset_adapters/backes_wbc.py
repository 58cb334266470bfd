"""White-Blood-Cell-dataset (Backes): 376 white-cell crops with nucleus masks."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._detseg import mask_samples
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.sample import UnifiedSample

#: mask pixel value -> canonical class
MASK_VALUES: Dict[int, str] = {0: "background", 1: "nucleus", 255: "nucleus"}


@register_adapter("backes_wbc")
class BackesWbc(DatasetAdapter):
    """White-Blood-Cell-dataset (github arbackes/White-Blood-Cell-dataset), archives extracted.

    <root>/
      images/<name>.png | .jpg | .bmp   white-cell crop
      masks/<name>.png                  nucleus mask of the same name and size: 0 background,
                                        255 (or 1) nucleus

    The repository ships zip archives: extract them first (``unzip '*.zip'``) so that
    images/ and masks/ lie in the root; a root holding only the archives is an error saying
    so. There is no official split: splits are ``seeded_split`` (70/10/20, seed 0) over the
    image name. The names of the extracted folders and the mask coding are taken from the
    repository's description, not from the archives.
    """

    tasks = ("segment",)
    splits = ("train", "val", "test")
    classes = {"segment": ("background", "nucleus")}
    license = "see source (cite the repository)"
    citation = ("Backes AR. White-Blood-Cell-dataset: white blood cell crops with nucleus "
                "segmentation masks. GitHub repository arbackes/White-Blood-Cell-dataset")
    url = "https://github.com/arbackes/White-Blood-Cell-dataset"
    size = "376 crops"
    access = ("git clone https://github.com/arbackes/White-Blood-Cell-dataset and extract its "
              "zip archives in the clone (the root)")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        if not (self.root / "images").is_dir() and any(self.root.glob("*.zip")):
            raise DataError(f"{self.name}: {self.root} holds zip archives but no images/ folder: "
                            f"extract the archives first (unzip '*.zip'). Expected layout:\n"
                            f"{self.layout()}")
        yield from mask_samples(self, split, self.root / "images", self.root / "masks",
                                MASK_VALUES)

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        keys = []
        for i in range(10):
            name = f"{i + 1:03d}"
            ex.write_crop(root / "images" / f"{name}.png", 64, "wbc", seed=i)
            ex.write_mask(root / "masks" / f"{name}.png",
                          ex.ellipse_mask(64, 64, [(22, 22, 42, 42)], [255]))
            keys.append(name)
        return count_splits(assign_splits(keys), cls.splits)
