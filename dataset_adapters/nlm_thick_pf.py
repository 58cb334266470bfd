"""NLM thick smears of P. falciparum patients: parasite and white-cell marks per image."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Dict, Iterable, List, Optional, Tuple

import numpy as np

from dataset_adapters._detseg import find_beside, image_size, map_label, report_error
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats._common import data_error, read_text, to_float, to_int
from unihema.data.sample import UnifiedSample

#: annotation type -> canonical term ("Parasite" is the species of the set, see parasite_label)
LABEL_MAP: Dict[str, str] = {
    "Parasite": "plasmodium falciparum",
    "White_Blood_Cell": "white blood cell",
    "WBC": "white blood cell",
}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


@dataclass(frozen=True)
class NlmObject:
    """One annotated object: raw type, shape, its points ``[(x, y), ...]`` and its line."""

    kind: str
    shape: str
    points: Tuple[Tuple[float, float], ...]
    line: int


def read_nlm_annotation(path: Path) -> Tuple[Optional[Tuple[int, int, int]], List[NlmObject]]:
    """Parse an NLM thick-smear annotation file: ``(header, objects)``.

    The optional first line is the header ``<number of objects>,<width>,<height>``; every
    other line is ``<id>,<type>,<comment>,<shape>,<number of points>,x1,y1[,x2,y2,...]``
    with shape ``Point`` (one point), ``Circle`` (centre, then a point on the circle),
    ``Rectangle`` (two corners) or ``Polygon`` (its vertices).

    Raises:
        DataError: a line with too few fields, a non-numeric value, a point count that does
            not match the coordinates, an unknown shape (file and line named).
    """
    header = None
    objects: List[NlmObject] = []
    for lineno, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(",")]
        if not objects and header is None and len(parts) == 3:
            header = tuple(to_int(p, path, line=lineno, field=f)
                           for p, f in zip(parts, ("objects", "width", "height")))
            continue
        if len(parts) < 7:
            raise data_error(path, f"expected 'id,type,comment,shape,n,x1,y1[,...]', got "
                                   f"{line!r}", line=lineno)
        kind, shape = parts[1], parts[3]
        n = to_int(parts[4], path, line=lineno, field="number of points")
        coords = [to_float(v, path, line=lineno, field="coordinate") for v in parts[5:]]
        if len(coords) != 2 * n:
            raise data_error(path, f"says {n} points but gives {len(coords)} coordinates",
                             line=lineno)
        want = {"Point": 1, "Circle": 2, "Rectangle": 2}.get(shape)
        if shape != "Polygon" and want is None:
            raise data_error(path, f"unknown shape '{shape}' (Point, Circle, Rectangle or "
                                   f"Polygon)", line=lineno)
        if (want is not None and n != want) or (shape == "Polygon" and n < 3):
            raise data_error(path, f"a {shape} needs {want or 'at least 3'} points, got {n}",
                             line=lineno)
        pts = tuple((coords[2 * i], coords[2 * i + 1]) for i in range(n))
        objects.append(NlmObject(kind, shape, pts, lineno))
    return header, objects


def object_box(obj: NlmObject, point_size: float) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """``(box xyxy, centre)`` of an object; a Point gets a ``point_size`` square."""
    pts = np.asarray(obj.points, dtype=np.float64)
    if obj.shape == "Point":
        (x, y), h = pts[0], point_size / 2.0
        return (x - h, y - h, x + h, y + h), (x, y)
    if obj.shape == "Circle":
        (x, y), r = pts[0], float(np.hypot(*(pts[1] - pts[0])))
        return (x - r, y - r, x + r, y + r), (x, y)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return (x0, y0, x1, y1), ((x0 + x1) / 2, (y0 + y1) / 2)


@register_adapter("nlm_thick_pf")
class NlmThickPf(DatasetAdapter):
    """NLM malaria thick smears, P. falciparum (Lister Hill Center malaria datasheet).

    <root>/
      <patient>/img/<image>.jpg       smartphone photo of a thick smear field
      <patient>/GT/<image>.txt        the image's annotations:
                                      "<objects>,<width>,<height>" (header, optional), then
                                      "<id>,<type>,<comment>,<shape>,<n>,x1,y1[,x2,y2...]" with
                                      type Parasite | White_Blood_Cell, shape Point | Circle
                                      (centre, point on the circle) | Rectangle | Polygon

    Parasites are labelled with the species of the set (``plasmodium falciparum``); white
    cells ``white blood cell``. Circles, rectangles and polygons give their own box; a Point
    gets a square of ``point_box_size`` pixels (40, parasites) or ``point_box_sizes[class]``
    (white cell 110), about one object at the phone camera's resolution, clipped to the
    image. Centres are kept in ``meta["points"]``. The header, when present, must agree with
    the image size and the number of objects. Splits are ``seeded_split`` (70/10/20, seed 0)
    grouped by patient folder, so no patient spans two splits. The folder layout and the
    line format are taken from the NLM datasheet (documentation), not from the files;
    ``data check`` names any line that differs.
    """

    tasks = ("detect",)
    splits = ("train", "val", "test")
    label_map: ClassVar[Dict[str, str]] = LABEL_MAP
    classes = {"detect": ("plasmodium falciparum", "white blood cell")}
    license = "public domain (U.S. National Library of Medicine)"
    citation = ("Yang F, et al. Deep Learning for Smartphone-Based Malaria Parasite Detection "
                "in Thick Blood Smears. IEEE Journal of Biomedical and Health Informatics "
                "24(5), 2020")
    url = ("https://lhncbc.nlm.nih.gov/LHC-research/LHC-projects/image-processing/"
           "malaria-datasheet.html")
    size = "about 150 patients"
    access = ("download the thick-smear archive linked from the NLM malaria datasheet page; "
              "unpack so that the patient folders lie in the root")
    #: side in pixels of the square drawn around a Point of a parasite
    point_box_size: ClassVar[int] = 40
    #: per-class exceptions to point_box_size (white cells are larger)
    point_box_sizes: ClassVar[Dict[str, int]] = {"white blood cell": 110}

    def _pairs(self) -> List[Tuple[Path, Path, str]]:
        """``(image, annotation, patient)`` of every annotation file."""
        out = []
        for gt in sorted(self.root.glob("*/GT/*.txt")):
            patient = gt.parent.parent.name
            image = find_beside(gt.parent.parent / "img", gt.stem, IMAGE_EXTENSIONS)
            if image is None:
                self.report(gt, f"no image {gt.stem}.<jpg|png|tif> in {gt.parent.parent / 'img'}")
                continue
            out.append((image, gt, patient))
        if not out and not self.problems:
            raise DataError(f"{self.name}: no <patient>/GT/*.txt files in {self.root}. "
                            f"Expected layout:\n{self.layout()}")
        return out

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        pairs = self._pairs()
        keys = [f"{patient}/{image.stem}" for image, _, patient in pairs]
        assignment = assign_splits(keys, [patient for _, _, patient in pairs])
        for (image, gt, patient), key in zip(pairs, keys):
            if assignment[key] == split:
                sample = self._sample(split, image, gt, patient, key)
                if sample is not None:
                    yield sample

    def _sample(self, split: str, image: Path, gt: Path, patient: str,
                key: str) -> Optional[UnifiedSample]:
        size = image_size(self, image)
        if size is None:
            return None
        width, height = size
        try:
            header, objects = read_nlm_annotation(gt)
        except DataError as exc:
            report_error(self, gt, exc)
            return None
        if header is not None and (header[1:] != (width, height) or header[0] != len(objects)):
            self.report(gt, f"header says {header[0]} objects in {header[1]}x{header[2]}, but "
                            f"the file has {len(objects)} objects and the image is "
                            f"{width}x{height}", 1)
            return None
        boxes, labels, points = [], [], []
        for obj in objects:
            label = map_label(self, obj.kind, self.label_map, gt, obj.line)
            if label is None:
                return None
            side = self.point_box_sizes.get(label, self.point_box_size)
            (x0, y0, x1, y1), centre = object_box(obj, side)
            if not (0 <= centre[0] <= width and 0 <= centre[1] <= height):
                self.report(gt, f"object centre {centre} lies outside the {width}x{height} "
                                f"image", obj.line)
                return None
            boxes.append((max(0.0, x0), max(0.0, y0), min(width, x1), min(height, y1)))
            labels.append(label)
            points.append([float(centre[0]), float(centre[1])])
        return UnifiedSample(
            dataset=self.name, split=split, sample_id=key, image_path=str(image),
            width=width, height=height, patient_id=patient,
            boxes=np.asarray(boxes, np.float32).reshape(-1, 4), box_labels=labels,
            meta={"kind": "field", "points": points, "shapes": [o.shape for o in objects],
                  "point_box_size": {"default": self.point_box_size, **self.point_box_sizes},
                  "license": self.license},
        )

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        keys, groups = [], []
        parasite = cls.classes["detect"][0]
        for p in range(6):  # six patients: the seeded split gives every split one
            patient = f"TF{p + 1:03d}" if cls.name == "nlm_thick_pf" else f"PV{p + 1:03d}"
            for i in range(2):
                name = f"IMG_2017{p:02d}{i:02d}_1{i}{p}"
                boxes = ex.layout_boxes(200, 150, 3, size=30, seed=2 * p + i)
                kinds = ["Parasite", "Parasite", "White_Blood_Cell"]
                ex.write_smear(root / patient / "img" / f"{name}.jpg", 200, 150, boxes,
                               [parasite, parasite, "wbc"], seed=2 * p + i)
                lines = [f"{len(boxes)},200,150"]
                for j, ((x0, y0, x1, y1), kind) in enumerate(zip(boxes, kinds)):
                    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                    if j == 0:
                        lines.append(f"{j},{kind},,Circle,2,{cx},{cy},{x1 - 1},{cy}")
                    else:
                        lines.append(f"{j},{kind},,Point,1,{cx},{cy}")
                gt = root / patient / "GT" / f"{name}.txt"
                gt.parent.mkdir(parents=True, exist_ok=True)
                gt.write_text("\n".join(lines) + "\n", encoding="utf-8")
                keys.append(f"{patient}/{name}")
                groups.append(patient)
        return count_splits(assign_splits(keys, groups), cls.splits)
