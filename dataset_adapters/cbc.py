"""CBC (Complete Blood Count) dataset: 360 BCCD fields re-annotated, Pascal VOC boxes."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters import _examples as ex
from dataset_adapters.bccd import CLASSES, voc_field_sample
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats import IMAGE_EXTENSIONS
from unihema.data.sample import UnifiedSample

#: raw VOC ``<name>`` -> canonical class
LABEL_MAP: Dict[str, str] = {
    "RBC": "red blood cell",
    "WBC": "white blood cell",
    "Platelets": "platelet",
}
#: split -> folder of the source
SPLIT_FOLDERS = {"train": "Training", "val": "Validation", "test": "Testing"}


@register_adapter("cbc")
class CBC(DatasetAdapter):
    """Complete-Blood-Cell-Count-Dataset (Alam & Islam), Pascal VOC layout.

    <root>/                                  the repository clone
      Training/Images/<name>.jpg             640x480 RGB fields (from BCCD)
      Training/Annotations/<name>.xml        Pascal VOC, <name> RBC | WBC | Platelets
      Validation/{Images,Annotations}/       likewise
      Testing/{Images,Annotations}/          likewise

    Splits: the source's Training, Validation and Testing folders (train, val, test). Every
    annotation needs its image (same stem, .jpg) and every image its annotation; a missing
    partner is a problem. Boxes follow the VOC devkit's 1-based inclusive indices (converted
    by x0 = xmin - 1, x1 = xmax), with the same 1-px border rule as `bccd`: an edge past the
    image by at most 1 px (a 0-based xmin = 0) is moved onto the border with a note, a box
    farther out is a problem. Labels: RBC, WBC, Platelets as in BCCD.

    The layout is taken from the repository's documentation only (not seen here); whether its
    re-annotation writes 0- or 1-based coordinates was not verified.
    """

    tasks = ("detect",)
    splits = ("train", "val", "test")
    classes = {"detect": CLASSES}
    size = "360 images"
    license = "MIT"
    citation = ("Alam MM, Islam MT. Machine learning approach of automatic identification and "
                "counting of blood cells. Healthcare Technology Letters 6(4):103-108, 2019.")
    url = "https://github.com/MahmudulAlam/Complete-Blood-Cell-Count-Dataset"
    downloads = ({"url": "https://github.com/MahmudulAlam/Complete-Blood-Cell-Count-Dataset/"
                         "archive/refs/heads/master.zip",
                  "sha256": None, "filename": "Complete-Blood-Cell-Count-Dataset-master.zip"},)

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        folder = self.root / SPLIT_FOLDERS[split]
        ann_dir, img_dir = folder / "Annotations", folder / "Images"
        for d in (ann_dir, img_dir):
            if not d.is_dir():
                raise DataError(f"{self.name}: folder {d} is missing. Expected layout:\n"
                                f"{self.layout()}")
        images = {p.stem: p for p in sorted(img_dir.iterdir())
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}
        xmls = {p.stem: p for p in sorted(ann_dir.glob("*.xml"))}
        for stem in sorted(set(images) - set(xmls)):
            self.report(images[stem], f"image has no annotation {ann_dir / (stem + '.xml')}")
        for stem, xml in xmls.items():
            image = images.get(stem, img_dir / f"{stem}.jpg")
            sample = voc_field_sample(self, split, stem, xml, image, LABEL_MAP)
            if sample is not None:
                yield sample

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        w, h = 128, 96
        kinds = ["RBC", "WBC", "RBC", "Platelets"]
        counts = {"train": 2, "val": 1, "test": 1}
        n = 0
        for split, count in counts.items():
            folder = Path(root) / SPLIT_FOLDERS[split]
            for _ in range(count):
                n += 1
                name = f"BloodImage_{n:05d}"
                boxes = ex.layout_boxes(w, h, 4, size=22, seed=n)
                ex.write_smear(folder / "Images" / f"{name}.jpg", w, h, boxes, kinds, seed=n)
                objs = [(k, (int(b[0]) + 1, int(b[1]) + 1, int(b[2]), int(b[3])))
                        for k, b in zip(kinds, boxes)]
                ex.write_voc(folder / "Annotations" / f"{name}.xml", f"{name}.jpg", w, h, objs,
                             folder="Images")
        return counts
