"""ALL-IDB1: 108 field images of peripheral blood, with the centre of every blast marked."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar, Dict, Iterable, List, Tuple

from dataset_adapters._detseg import image_size, report_error
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats import points_to_boxes, read_points
from unihema.data.sample import UnifiedSample

#: what a point of an .xyc file marks (ALL-IDB1 images come from acute lymphoblastic leukaemia
#: patients; the experts marked the lymphoblasts)
LABEL_MAP: Dict[str, str] = {"blast": "lymphoblast"}

_NAME = re.compile(r"^Im(\d+)_([01])$", re.IGNORECASE)
_EXTENSIONS = (".jpg", ".jpeg", ".tif", ".tiff")


@register_adapter("all_idb1")
class AllIdb1(DatasetAdapter):
    """ALL-IDB1 (Acute Lymphoblastic Leukemia Image Database, University of Milan).

    <root>/                       (ALL_IDB1 as unpacked; images and .xyc files may also lie
                                   directly in the root)
      im/Im<nnn>_<y>.jpg          field image (2592x1944 or 1712x1368); y = 1 when the image
                                  holds blasts (an ALL patient), 0 otherwise
      xyc/Im<nnn>_1.xyc           one blast centre a line, "x y" in pixels (whitespace
                                  separated); only images with y = 1 have one

    Every centre becomes a "lymphoblast" box of ``point_box_size`` pixels (128, about one blast
    diameter at these magnifications) clipped to the image; the points are kept in
    ``meta["points"]``. Images with y = 0 are annotated as holding no blast (zero boxes); an
    image with y = 1 and no .xyc file is a problem, and so is an .xyc file with points for an
    image with y = 0. There is no official split and no patient id: splits are
    ``seeded_split`` (70/10/20, seed 0) over the image name. The layout (``im/``, ``xyc/``)
    and the .xyc format are taken from the database's documentation, not from the files.
    """

    tasks = ("detect",)
    splits = ("train", "val", "test")
    classes = {"detect": ("lymphoblast",)}
    license = "research use (ALL-IDB terms of use; cite the paper)"
    citation = ("Labati RD, Piuri V, Scotti F. ALL-IDB: the acute lymphoblastic leukemia image "
                "database for image processing. IEEE International Conference on Image "
                "Processing (ICIP), 2011")
    url = "https://scotti.di.unimi.it/all/"
    size = "108 images"
    access = ("request access with the form at https://scotti.di.unimi.it/all/ (the download "
              "link is sent by e-mail); unpack ALL_IDB1 as the root")
    #: side in pixels of the box drawn around each blast centre
    point_box_size: ClassVar[int] = 128

    def _folders(self) -> Tuple[Path, Path]:
        im = self.root / "im" if (self.root / "im").is_dir() else self.root
        xyc = self.root / "xyc" if (self.root / "xyc").is_dir() else im
        return im, xyc

    def _images(self, folder: Path) -> List[Tuple[Path, bool]]:
        out = []
        for p in sorted(folder.iterdir()):
            if not p.is_file() or p.name.startswith(".") or p.suffix.lower() not in _EXTENSIONS:
                continue
            m = _NAME.match(p.stem)
            if m is None:
                self.report(p, "image name is not Im<nnn>_<0|1> (the label is in the name)")
                continue
            out.append((p, m.group(2) == "1"))
        if not out and not self.problems:
            raise DataError(f"{self.name}: no Im<nnn>_<y>.jpg images in {folder}. Expected "
                            f"layout:\n{self.layout()}")
        return out

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        im, xyc = self._folders()
        images = self._images(im)
        splits = assign_splits([p.stem for p, _ in images])
        for path, has_blasts in images:
            if splits[path.stem] != split:
                continue
            size = image_size(self, path)
            if size is None:
                continue
            width, height = size
            point_file = xyc / f"{path.stem}.xyc"
            points = []
            if point_file.is_file():
                try:
                    points = read_points(point_file, with_class=False)
                    boxes = points_to_boxes(points, self.point_box_size, width, height,
                                            path=point_file)
                except DataError as exc:
                    report_error(self, point_file, exc)
                    continue
                if points and not has_blasts:
                    self.report(point_file, f"{len(points)} blast centres for an image named "
                                            f"_0 (no blasts)")
                    continue
            elif has_blasts:
                self.report(path, f"image named _1 (holds blasts) has no centre file "
                                  f"{point_file}")
                continue
            else:
                boxes = points_to_boxes([], self.point_box_size, width, height)
            yield UnifiedSample(
                dataset=self.name, split=split, sample_id=path.stem, image_path=str(path),
                width=width, height=height, boxes=boxes,
                box_labels=[LABEL_MAP["blast"]] * len(points),
                meta={"kind": "field", "points": [[p.x, p.y] for p in points],
                      "point_box_size": self.point_box_size, "has_blasts": has_blasts,
                      "license": self.license},
            )

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        names = []
        for i in range(1, 10):  # nine: the seeded split gives every split an image
            blasts = i % 3 != 0
            name = f"Im{i:03d}_{int(blasts)}"
            names.append(name)
            boxes = ex.layout_boxes(200, 150, 3, size=40, seed=i)
            labels = ["lymphoblast" if blasts and k < 2 else "red blood cell" for k in range(3)]
            ex.write_smear(root / "im" / f"{name}.jpg", 200, 150, boxes, labels, seed=i)
            if blasts:
                ex.write_points(root / "xyc" / f"{name}.xyc",
                                [((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in boxes[:2]])
        return count_splits(assign_splits(names), cls.splits)
