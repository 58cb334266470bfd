"""Chula RBC-12: red-cell morphology, one point label per cell, on 640x480 smear photos."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Dict, Iterable, List

from dataset_adapters._detseg import (assign_splits, count_splits, image_size, list_images,
                                      map_label, report_error)
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats import points_to_boxes, read_points
from unihema.data.sample import UnifiedSample

#: the type column of Label/<n>.txt -> canonical term
LABEL_MAP: Dict[str, str] = {
    "0": "red blood cell",  # normal cell
    "1": "macrocyte",
    "2": "microcyte",
    "3": "spherocyte",
    "4": "target cell",
    "5": "stomatocyte",
    "6": "ovalocyte",
    "7": "teardrop cell",
    "8": "burr cell",
    "9": "schistocyte",
    "10": "unclassified red blood cell",  # "uncategorised"
    "11": "hypochromic cell",  # "hypochromia"
    "12": "elliptocyte",
}

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


@register_adapter("chula_rbc12")
class ChulaRBC12(DatasetAdapter):
    """Chula-RBC-12-Dataset as cloned from github Chula-PIC-Lab/Chula-RBC-12-Dataset.

    <root>/
      Dataset/<n>.jpg       smear photo, 640x480 (n = 1, 2, ...)
      Label/<n>.txt         one red cell a line: "x y type", space separated; (x, y) the cell
                            centre in pixels, type 0..12 (LABEL_MAP: 0 normal, 1 macrocyte,
                            2 microcyte, 3 spherocyte, 4 target cell, 5 stomatocyte,
                            6 ovalocyte, 7 teardrop, 8 burr cell, 9 schistocyte,
                            10 uncategorised, 11 hypochromia, 12 elliptocyte)

    Each point becomes a square box of ``point_box_size`` pixels (48, about one red-cell
    diameter at this magnification) centred on it and clipped to the image; the points are
    kept in ``meta["points"]``. The source leaves some images without a label file: those are
    not annotated, yield no sample and are listed as notes (``self.notes``, printed by
    ``data check``); an empty label file means "annotated, no cell". There is no official
    split and no patient id: splits are ``seeded_split`` (70/10/20, seed 0) over the image
    name. The layout and the line format
    are taken from the repository's README (documentation), not from the files.
    """

    tasks = ("detect",)
    splits = ("train", "val", "test")
    classes = {"detect": tuple(dict.fromkeys(LABEL_MAP.values()))}
    license = "MIT"
    citation = ("Naruenatthanaset K, et al. Red Blood Cell Segmentation with Overlapping Cell "
                "Separation and Classification on Imbalanced Dataset. Scientific Reports, 2023")
    url = "https://github.com/Chula-PIC-Lab/Chula-RBC-12-Dataset"
    size = "706 images, >20,000 red cells"
    access = ("git clone https://github.com/Chula-PIC-Lab/Chula-RBC-12-Dataset (the root is the "
              "clone, holding Dataset/ and Label/)")
    #: side in pixels of the box drawn around each labelled cell centre
    point_box_size: ClassVar[int] = 48

    def _images(self) -> List[Path]:
        folder = self.root / "Dataset"
        images = list_images(folder, IMAGE_EXTENSIONS)
        if not images:
            raise DataError(f"{self.name}: no images in {folder}. Expected layout:\n"
                            f"{self.layout()}")
        return images

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        images = self._images()
        splits = assign_splits([p.stem for p in images])
        for path in images:
            if splits[path.stem] != split:
                continue
            label_file = self.root / "Label" / f"{path.stem}.txt"
            if not label_file.is_file():
                self.note(path, f"no label file {label_file}: not annotated, no sample")
                continue
            size = image_size(self, path)
            if size is None:
                continue
            width, height = size
            try:
                points = read_points(label_file, with_class=True)
                boxes = points_to_boxes(points, self.point_box_size, width, height,
                                        path=label_file)
            except DataError as exc:
                report_error(self, label_file, exc)
                continue
            labels = [map_label(self, p.cls or "", LABEL_MAP, label_file, p.line)
                      for p in points]
            if None in labels:
                continue
            yield UnifiedSample(
                dataset=self.name, split=split, sample_id=path.stem, image_path=str(path),
                width=width, height=height, boxes=boxes, box_labels=labels,
                meta={"kind": "field", "points": [[p.x, p.y] for p in points],
                      "point_box_size": self.point_box_size, "license": self.license},
            )

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        names = [str(n) for n in range(1, 9)]
        for i, n in enumerate(names):
            boxes = ex.layout_boxes(160, 120, 2 + i % 3, size=30, seed=i)
            types = [str((2 * i + k) % 13) for k in range(len(boxes))]
            ex.write_smear(root / "Dataset" / f"{n}.jpg", 160, 120, boxes,
                           [LABEL_MAP[t] for t in types], seed=i)
            ex.write_points(root / "Label" / f"{n}.txt",
                            [((x0 + x1) / 2, (y0 + y1) / 2, t)
                             for (x0, y0, x1, y1), t in zip(boxes, types)])
        # an image without a label file: not annotated, so no sample
        ex.write_smear(root / "Dataset" / "9.jpg", 160, 120)
        splits = assign_splits(names + ["9"])  # the loader splits every image
        return count_splits({n: splits[n] for n in names}, cls.splits)
