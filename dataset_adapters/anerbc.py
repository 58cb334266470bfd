"""AneRBC: smear images of anemic and healthy individuals with red-cell masks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from dataset_adapters._detseg import find_beside, list_images, mask_sample
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.sample import UnifiedSample

#: group folder -> canonical image label
LABEL_MAP: Dict[str, str] = {
    "Anemic_individuals": "anemia",
    "Healthy_individuals": "healthy",
}
#: mask pixel value -> canonical class
MASK_VALUES: Dict[int, str] = {0: "background", 1: "red blood cell", 255: "red blood cell"}
SUBSETS = ("AneRBC-I", "AneRBC-II")
IMAGES, MASKS = "Original_images", "Binary_segmented"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_CHILD = re.compile(r"^(?P<parent>.+)_(?P<k>\d+)$")


def parent_of(subset: str, stem: str) -> str:
    """The full image a record comes from: itself in AneRBC-I; in AneRBC-II (sub-images cut
    from AneRBC-I images) the name without its trailing ``_<k>``."""
    if subset == "AneRBC-II":
        m = _CHILD.match(stem)
        if m:
            return m.group("parent")
    return stem


@register_adapter("anerbc")
class AneRBC(DatasetAdapter):
    """AneRBC (Mendeley Data hms3sjzt7f): AneRBC-I full images and AneRBC-II sub-images.

    <root>/
      AneRBC-I/Anemic_individuals/Original_images/<name>.png
      AneRBC-I/Anemic_individuals/Binary_segmented/<name>.png    red-cell mask, same name
                                                                 and size: 0 background,
                                                                 255 (or 1) red cell
      AneRBC-I/Healthy_individuals/{Original_images,Binary_segmented}/<name>.png
      AneRBC-II/{Anemic_individuals,Healthy_individuals}/{Original_images,Binary_segmented}/
                <name>_<k>.png                                   sub-images of AneRBC-I

    Each record is segmented (binary red-cell mask) and classified by its group folder
    (anemia or healthy). Other folders of the release (RGB-segmented images) are not read.
    There is no official split: splits are ``seeded_split`` (70/10/20, seed 0) grouped by the
    full image, so an AneRBC-II sub-image (``<name>_<k>``) lands in the split of its parent
    ``<name>`` and no image leaks across splits. The folder names and the naming of
    sub-images are taken from the dataset's description (documentation), not from the
    files.
    """

    tasks = ("segment", "classify")
    splits = ("train", "val", "test")
    classes = {"segment": ("background", "red blood cell"),
               "classify": tuple(LABEL_MAP.values())}
    license = "CC BY 4.0"
    citation = ("AneRBC: anemic and healthy red blood cell images with segmentation masks "
                "(AneRBC-I and AneRBC-II). Mendeley Data, dataset hms3sjzt7f (cite the dataset "
                "page)")
    url = "https://data.mendeley.com/datasets/hms3sjzt7f"
    size = "1,000 images (AneRBC-I) and 12,000 sub-images (AneRBC-II)"
    access = ("Mendeley Data hms3sjzt7f: 'Download All' (no login); unpack so that AneRBC-I/ "
              "and AneRBC-II/ lie in the root")

    def _items(self) -> List[Tuple[Path, Path, str, str, str]]:
        """``(image, mask, label, key, group)`` of every image with its mask."""
        out = []
        for subset in SUBSETS:
            for folder, label in LABEL_MAP.items():
                base = self.root / subset / folder
                for image in list_images(base / IMAGES, IMAGE_EXTENSIONS):
                    mask = find_beside(base / MASKS, image.stem, IMAGE_EXTENSIONS)
                    if mask is None:
                        self.report(image, f"no mask {image.stem}.* in {base / MASKS}")
                        continue
                    out.append((image, mask, label, f"{subset}/{folder}/{image.stem}",
                                f"{folder}/{parent_of(subset, image.stem)}"))
        if not out and not self.problems:
            raise DataError(f"{self.name}: no images in <subset>/<group>/{IMAGES}/ under "
                            f"{self.root}. Expected layout:\n{self.layout()}")
        return out

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        items = self._items()
        assignment = assign_splits([it[3] for it in items], [it[4] for it in items])
        for image, mask, label, key, group in items:
            if assignment[key] == split:
                sample = mask_sample(self, split, image, mask, MASK_VALUES, key, label=label,
                                     kind="field", meta={"source_image": group})
                if sample is not None:
                    yield sample

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        keys, groups = [], []
        for folder in LABEL_MAP:
            for i in range(3):
                name = f"{i + 1:03d}_{'a' if folder.startswith('A') else 'h'}"
                boxes = ex.layout_boxes(160, 120, 4, size=26, seed=i)
                base = root / "AneRBC-I" / folder
                ex.write_smear(base / IMAGES / f"{name}.png", 160, 120, boxes, ["rbc"] * 4,
                               seed=i)
                ex.write_mask(base / MASKS / f"{name}.png",
                              ex.ellipse_mask(120, 160, boxes, [255] * 4))
                keys.append(f"AneRBC-I/{folder}/{name}")
                groups.append(f"{folder}/{name}")
                sub = root / "AneRBC-II" / folder
                child = f"{name}_1"
                ex.write_smear(sub / IMAGES / f"{child}.png", 80, 60, boxes[:1], ["rbc"], seed=i)
                ex.write_mask(sub / MASKS / f"{child}.png",
                              ex.ellipse_mask(60, 80, boxes[:1], [255]))
                keys.append(f"AneRBC-II/{folder}/{child}")
                groups.append(f"{folder}/{name}")
        return count_splits(assign_splits(keys, groups), cls.splits)
