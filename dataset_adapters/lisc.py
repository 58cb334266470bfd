"""LISC (Rezatofighi and Soltanian-Zadeh 2011): white-cell images, five classes, expert masks."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, Optional

from dataset_adapters._classification import CropClassifier, classes_of, write_crops
from dataset_adapters._splits import assign_splits, count_splits
from dataset_adapters._examples import ellipse_mask, write_mask
from unihema.data.catalog import DataError, register_adapter
from unihema.data.sample import UnifiedSample

#: class folder -> canonical term ("mixt", fields with several cell types, is not read)
LABEL_MAP: Dict[str, str] = {
    "Baso": "basophil",
    "eosi": "eosinophil",
    "lymp": "lymphocyte",
    "mono": "monocyte",
    "neut": "neutrophil",
}
#: ground-truth mask value -> canonical class (assumed grey levels; see the docstring)
MASK_VALUES: Dict[int, str] = {0: "background", 128: "cytoplasm", 255: "nucleus"}
MAIN = "Main Dataset"
GROUND_TRUTH = "Ground Truth Segmentation"
DATABASE = "LISC Database"


@register_adapter("lisc")
class Lisc(CropClassifier):
    """LISC: 720x576 BMP images centred on one white cell, folder per class, expert masks.

    <root>/                                     (or <root>/LISC Database/)
      Main Dataset/<class>/<n>.bmp              class: Baso, eosi, lymp, mono, neut
      Main Dataset/mixt/*.bmp                   not read: several cell types, no single label
      Ground Truth Segmentation/<class>/[<expert folder>/]<n>[_expert].bmp   optional masks

    Labels come from the class folder (``LABEL_MAP``). The mask of ``<class>/<n>.bmp`` is the
    first file, in sorted path order, under ``Ground Truth Segmentation/<class>/`` (any depth)
    whose stem is ``<n>`` or ``<n>_expert``; an image without one is still a classification
    sample. Mask values are read as ``MASK_VALUES`` (0 background, 128 cytoplasm, 255
    nucleus): this grey-level coding is an assumption, and ``unihema data check`` names any
    other value found. No official split, no patient ids: splits are
    ``unihema.data.splits.seeded_split`` (70/10/20, seed 0). The layout is taken from the
    LISC web page and the catalogue only; it was not seen.
    """

    tasks = ("classify", "segment")
    splits = ("train", "val", "test")
    label_map = LABEL_MAP
    ignore_folders = ("mixt",)
    classes = {"classify": classes_of(LABEL_MAP), "segment": ("background", "cytoplasm",
                                                              "nucleus")}
    license = "research use (LISC terms; cite the LISC paper)"
    citation = ("Rezatofighi SH, Soltanian-Zadeh H. Automatic recognition of five types of "
                "white blood cells in peripheral blood. Computerized Medical Imaging and "
                "Graphics 35(4):333-343, 2011. doi:10.1016/j.compmedimag.2011.01.003")
    url = "http://users.cecs.anu.edu.au/~hrezatofighi/Data/Leukocyte%20Data.htm"
    size = "257 images"
    access = "download 'LISC Database' from the LISC web page (no login); extract into the root"

    def base(self) -> Path:
        for cand in (self.root, self.root / DATABASE):
            if (cand / MAIN).is_dir():
                return cand
        raise DataError(f"{self.name}: '{MAIN}' folder not found in {self.root} or "
                        f"{self.root / DATABASE}. Expected layout:\n{self.layout()}")

    def mask_of(self, base: Path, image: Path) -> Optional[Path]:
        gt = base / GROUND_TRUTH
        cls_dirs = [p for p in gt.iterdir() if p.is_dir()
                    and p.name.lower() == image.parent.name.lower()] if gt.is_dir() else []
        stems = {image.stem.lower(), f"{image.stem}_expert".lower()}
        for d in cls_dirs:
            for p in sorted(d.rglob("*")):
                if p.is_file() and p.stem.lower() in stems and not p.name.startswith("."):
                    return p
        return None

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        base = self.base()
        for sample in self.load_folders(split, base / MAIN):
            mask = self.mask_of(base, Path(sample.image_path))
            if mask is not None:
                sample.mask_path = str(mask)
                sample.mask_values = dict(MASK_VALUES)
            yield sample

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        files = [f"{c}/{i}.bmp" for c in LABEL_MAP for i in (1, 2)]
        write_crops(root / MAIN, files + ["mixt/1.bmp"], size=(72, 58))
        box = [(14.0, 8.0, 58.0, 50.0)]
        for rel in files[::2]:  # masks for half of the images, in an expert folder
            c, n = rel.split("/")
            mask = ellipse_mask(58, 72, box, [128], nucleus_value=255)
            write_mask(root / GROUND_TRUTH / c / "areaforexpert1" / f"{n[:-4]}_expert.bmp", mask)
        ids = [f[: -len(".bmp")] for f in files]
        return count_splits(assign_splits(ids, seed=cls.split_seed), cls.splits)
