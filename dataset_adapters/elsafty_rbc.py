"""Elsafty RBC: smear patches with red-cell masks and red-cell crops in nine shape classes."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._detseg import class_folder_samples, mask_samples
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.sample import UnifiedSample

#: shape class folder -> canonical term
LABEL_MAP: Dict[str, str] = {
    "Circular": "red blood cell",
    "Elongated": "elliptocyte",
    "Teardrop": "teardrop cell",
    "Stomatocyte": "stomatocyte",
    "Echinocyte": "burr cell",
    "Acanthocyte": "acanthocyte",
    "Spherocyte": "spherocyte",
    "Target": "target cell",
    "Schistocyte": "schistocyte",
}
#: mask pixel value -> canonical class
MASK_VALUES: Dict[int, str] = {0: "background", 1: "red blood cell", 255: "red blood cell"}
PATCHES, CELLS = "Patches", "Cells"


@register_adapter("elsafty_rbc")
class ElsaftyRbc(DatasetAdapter):
    """Elsafty et al. red blood cell set (figshare 43957974).

    <root>/
      Patches/images/<name>.png     smear patch
      Patches/masks/<name>.png      red-cell mask of the same name and size: 0 background,
                                    255 (or 1) red cell
      Cells/<Class>/<name>.png      single red-cell crop; Class one of Circular, Elongated,
                                    Teardrop, Stomatocyte, Echinocyte, Acanthocyte,
                                    Spherocyte, Target, Schistocyte (LABEL_MAP)

    Patches are segmented, crops classified; either part may be absent. There is no
    official split: each part is split by ``seeded_split`` (70/10/20, seed 0) over its
    relative paths. The folder names, the nine class names and the mask coding are taken
    from the catalogue and the article (documentation), not from the files: check the class
    folders against LABEL_MAP (``data check`` names every folder it does not know).
    """

    tasks = ("segment", "classify")
    splits = ("train", "val", "test")
    classes = {"segment": ("background", "red blood cell"),
               "classify": tuple(LABEL_MAP.values())}
    license = "CC BY 4.0"
    citation = ("Elsafty A, et al. Red blood cell segmentation and shape "
                "classification dataset: 47K patches with masks and 240K cells in nine shape "
                "classes. figshare, dataset 43957974")
    url = "https://doi.org/10.6084/m9.figshare.43957974"
    size = "47,000 patches with masks; 240,000 red cells in 9 classes"
    access = ("figshare 43957974: download the files (no login); unpack so that Patches/ and "
              "Cells/ lie in the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        patches, cells = self.root / PATCHES, self.root / CELLS
        if not patches.is_dir() and not cells.is_dir():
            raise DataError(f"{self.name}: neither {PATCHES}/ nor {CELLS}/ in {self.root}. "
                            f"Expected layout:\n{self.layout()}")
        if patches.is_dir():
            yield from mask_samples(self, split, patches / "images", patches / "masks",
                                    MASK_VALUES, prefix="patches/", kind="field")
        if cells.is_dir():
            yield from class_folder_samples(self, split, cells, LABEL_MAP, prefix="cells/")

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        patch_keys, cell_keys = [], []
        for i in range(5):
            boxes = ex.layout_boxes(96, 96, 3, size=26, seed=i)
            ex.write_smear(root / PATCHES / "images" / f"patch_{i:05d}.png", 96, 96, boxes,
                           ["rbc"] * 3, seed=i)
            ex.write_mask(root / PATCHES / "masks" / f"patch_{i:05d}.png",
                          ex.ellipse_mask(96, 96, boxes, [255] * 3))
            patch_keys.append(f"patch_{i:05d}")
        for folder in LABEL_MAP:
            ex.write_crop(root / CELLS / folder / f"cell_{folder.lower()}_0.png", 40, "rbc")
            cell_keys.append(f"{folder}/cell_{folder.lower()}_0")
        patches = count_splits(assign_splits(patch_keys), cls.splits)
        cells = count_splits(assign_splits(cell_keys), cls.splits)
        return {s: patches[s] + cells[s] for s in cls.splits}
