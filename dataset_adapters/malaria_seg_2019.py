"""Malaria thin-smear images with parasite masks (Diagnostic Pathology 2020)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._detseg import mask_samples
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import DatasetAdapter, register_adapter
from unihema.data.sample import UnifiedSample

#: mask pixel value -> canonical class
MASK_VALUES: Dict[int, str] = {0: "background", 1: "malaria parasite", 255: "malaria parasite"}


@register_adapter("malaria_seg_2019")
class MalariaSeg2019(DatasetAdapter):
    """Malaria parasite segmentation set (Mendeley Data 5bf2kmwvfn).

    <root>/
      images/<name>.jpg | .png      thin-smear field
      masks/<name>.png              mask of the same name and size: 0 background, 255 (or 1)
                                    parasite

    There is no official split and no patient id: splits are ``seeded_split`` (70/10/20,
    seed 0) over the image name. The folder names and the mask coding are taken from the
    dataset description (documentation), not from the files; ``data check`` lists any other
    mask value (a JPEG-compressed mask, for instance) with the file.
    """

    tasks = ("segment",)
    splits = ("train", "val", "test")
    classes = {"segment": ("background", "malaria parasite")}
    license = "CC BY 4.0"
    citation = ("Malaria parasite segmentation in thin blood smear images. Diagnostic "
                "Pathology, 2020; data: Mendeley Data 5bf2kmwvfn (cite the dataset page)")
    url = "https://data.mendeley.com/datasets/5bf2kmwvfn"
    size = "thin-smear images with parasite masks"
    access = ("Mendeley Data 5bf2kmwvfn: 'Download All' (no login); unpack so that images/ and "
              "masks/ lie in the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        yield from mask_samples(self, split, self.root / "images", self.root / "masks",
                                MASK_VALUES, kind="field")

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        keys = []
        for i in range(10):
            name = f"malaria_{i + 1:03d}"
            boxes = ex.layout_boxes(160, 120, 2, size=20, seed=i)
            ex.write_smear(root / "images" / f"{name}.jpg", 160, 120, boxes,
                           ["parasite"] * 2, seed=i)
            ex.write_mask(root / "masks" / f"{name}.png",
                          ex.ellipse_mask(120, 160, boxes, [255, 255]))
            keys.append(name)
        return count_splits(assign_splits(keys), cls.splits)
