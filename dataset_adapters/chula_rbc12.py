"""Chula RBC-12: red-cell morphology, one point label per cell, on 640x480 smear photos;
every labelled cell is also a classify crop of its field."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Dict, Iterable, List

import numpy as np

from dataset_adapters._detseg import image_size, list_images, map_label, report_error
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats import points_to_boxes, read_points
from unihema.data.io import crop_image_path
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
      Dataset/<n>.jpg       smear photo, 640x480, n = 1..738 (1000x, ~5 px per micrometre)
      Label/<n>.txt         one red cell a line: "x y type", space separated; (x, y) integer
                            pixels at the cell centre, type 0..12 (LABEL_MAP: 0 normal,
                            1 macrocyte, 2 microcyte, 3 spherocyte, 4 target cell,
                            5 stomatocyte, 6 ovalocyte, 7 teardrop, 8 burr cell,
                            9 schistocyte, 10 uncategorised, 11 hypochromia, 12 elliptocyte)

    Checked against the real files (commit fa130f4): 738 images, all 640x480; 623 label files,
    22,106 lines, every point inside its image, no point given twice. Only a *subset* of the
    cells of a field is labelled (from nearly all to 6 of ~90; by a rough count of stained area,
    about half of the fields have under a third of their cells marked): an unmarked cell is not
    background, so detection scores on these fields count correct finds of unmarked cells as
    false positives. 115 images have no label file and 2 (53, 56) an empty one although both
    show fields full of red cells: all 117 are unannotated, yield no sample and are listed as
    notes (``self.notes``, printed by ``data check``).

    detect: one sample per field (``meta["kind"] = "field"``). Each point becomes a square
    box of ``point_box_size`` pixels (48) centred on it and clipped to the image; the points
    are kept in ``meta["points"]``. Measured on 2,393 lone labelled cells, a cell's longer
    side is 42 px (median; 35-52 from the 10th to the 90th percentile, macrocytes 51), so the
    box holds most cells whole with a few pixels to spare.

    classify: one sample per labelled cell (``meta["kind"] = "crop"``, id ``<n>_c<k>`` for the
    k-th point of the label file, 0-based, box k of the field), label = its type: the window of
    ``crop_size`` pixels (64, about 1.5 cell diameters: the cell and the edges of its
    neighbours) centred on the point and clipped to the image (smaller at the border, the cell
    off-centre), addressed as ``<n>.jpg::crop/x0,y0,x1,y1``
    (:func:`unihema.data.io.crop_image_path`); ``meta`` holds ``field``, ``box_index`` and
    ``point`` (the cell centre in crop pixels).

    There is no official split and no patient id: splits are ``seeded_split`` (70/10/20,
    seed 0) over the image name, and a field's crops share its split.
    """

    tasks = ("detect", "classify")
    splits = ("train", "val", "test")
    classes = {"detect": tuple(dict.fromkeys(LABEL_MAP.values())),
               "classify": tuple(dict.fromkeys(LABEL_MAP.values()))}
    license = "MIT"
    citation = ("Naruenatthanaset K, et al. Red Blood Cell Segmentation with Overlapping Cell "
                "Separation and Classification on Imbalanced Dataset. Scientific Reports, 2023")
    url = "https://github.com/Chula-PIC-Lab/Chula-RBC-12-Dataset"
    size = "738 images (623 with labels), 22,106 red cells in 13 types"
    access = ("git clone https://github.com/Chula-PIC-Lab/Chula-RBC-12-Dataset (the root is the "
              "clone, holding Dataset/ and Label/)")
    #: side in pixels of the box drawn around each labelled cell centre
    point_box_size: ClassVar[int] = 48
    #: side in pixels of the classify window centred on each labelled cell
    crop_size: ClassVar[int] = 64

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
            if not points:
                self.note(label_file, "empty label file: no cell marked, which here means not "
                                      "annotated (the field shows red cells); no sample")
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
            windows = points_to_boxes(points, self.crop_size, width, height, path=label_file)
            for k, (p, label, window) in enumerate(zip(points, labels, windows)):
                x0, y0 = int(np.floor(window[0])), int(np.floor(window[1]))
                x1, y1 = int(np.ceil(window[2])), int(np.ceil(window[3]))
                yield UnifiedSample(
                    dataset=self.name, split=split, sample_id=f"{path.stem}_c{k}",
                    image_path=crop_image_path(path, (x0, y0, x1, y1)),
                    width=x1 - x0, height=y1 - y0, label=label,
                    label_set=list(self.classes["classify"]),
                    meta={"kind": "crop", "field": path.stem, "box_index": k,
                          "point": [p.x - x0, p.y - y0], "license": self.license},
                )

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        names = [str(n) for n in range(1, 10)]  # nine: every seeded split gets a field
        cells = {}
        for i, n in enumerate(names):
            boxes = ex.layout_boxes(160, 120, 2 + i % 3, size=30, seed=i)
            types = [str((2 * i + k) % 13) for k in range(len(boxes))]
            ex.write_smear(root / "Dataset" / f"{n}.jpg", 160, 120, boxes,
                           [LABEL_MAP[t] for t in types], seed=i)
            ex.write_points(root / "Label" / f"{n}.txt",
                            [((x0 + x1) / 2, (y0 + y1) / 2, t)
                             for (x0, y0, x1, y1), t in zip(boxes, types)])
            cells[n] = len(boxes)
        # not annotated, so no sample: an image without a label file, one with an empty one
        ex.write_smear(root / "Dataset" / "10.jpg", 160, 120)
        ex.write_smear(root / "Dataset" / "11.jpg", 160, 120)
        (root / "Label" / "11.txt").write_text("")
        splits = assign_splits(names + ["10", "11"])  # the loader splits every image
        counts = count_splits({n: splits[n] for n in names}, cls.splits)
        for n in names:  # the field and one crop per cell
            counts[splits[n]] += cells[n]
        return counts
