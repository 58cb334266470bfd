"""TXL-PBC: fields from BCCD, BCD, PBC and Raabin re-annotated, YOLO boxes of WBC, RBC,
platelets."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np

from dataset_adapters import _examples as ex
from dataset_adapters._fieldboxes import fit_box, report_reader_error
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats import IMAGE_EXTENSIONS, read_yolo, read_yolo_names, yolo_to_xyxy
from unihema.data.io import image_size
from unihema.data.sample import UnifiedSample

#: raw class name (data.yaml / classes.txt) -> canonical class
LABEL_MAP: Dict[str, str] = {
    "WBC": "white blood cell",
    "RBC": "red blood cell",
    "Platelets": "platelet",
}
#: the documented order of data.yaml's names (class index i is NAMES[i])
NAMES = ("WBC", "RBC", "Platelets")


@register_adapter("txl_pbc")
class TXLPBC(DatasetAdapter):
    """TXL-PBC (lugan113/TXL-PBC_Dataset), YOLO layout.

    <root>/                              the repository clone, or its TXL_PBC/ folder itself
      TXL_PBC/data.yaml                  names: [WBC, RBC, Platelets] (list or {id: name})
      TXL_PBC/images/{train,val,test}/<name>.jpg
      TXL_PBC/labels/{train,val,test}/<name>.txt   YOLO: `cls cx cy w h` a line, normalised
      TXL_PBC/labels/classes.txt         the same names, one a line

    Splits: the source's train, val and test folders. Class names are read from data.yaml
    and labels/classes.txt (whichever exist; when both do they must agree) and mapped WBC ->
    white blood cell, RBC -> red blood cell, Platelets -> platelet. Each image needs a label
    file of the same stem and each label file its image (a missing partner is a problem; an
    empty label file is an image without cells). Boxes are converted from normalised centre
    and size with the image's stored size; an edge past the image by at most 1 px is moved onto
    the border with a note, a box farther out is a problem.

    The layout is taken from the repository's documentation only (not seen here); the exact
    place of data.yaml (TXL_PBC/ or the repository root) is accepted either way.
    """

    tasks = ("detect",)
    splits = ("train", "val", "test")
    classes = {"detect": ("red blood cell", "white blood cell", "platelet")}
    size = "1,260-1,440 images"
    license = "MIT"
    citation = ("Gan L, Li X, Wang X. TXL-PBC: a freely accessible labeled peripheral blood cell "
                "dataset. arXiv:2407.13214, 2024.")
    url = "https://github.com/lugan113/TXL-PBC_Dataset"
    downloads = ({"url": "https://github.com/lugan113/TXL-PBC_Dataset/archive/refs/heads/"
                         "main.zip", "sha256": None, "filename": "TXL-PBC_Dataset-main.zip"},)

    def base(self) -> Path:
        for cand in (self.root / "TXL_PBC", self.root):
            if (cand / "images").is_dir() and (cand / "labels").is_dir():
                return cand
        raise DataError(f"{self.name}: no images/ and labels/ under {self.root} or "
                        f"{self.root / 'TXL_PBC'}. Expected layout:\n{self.layout()}")

    def class_names(self, base: Path) -> List[str]:
        """Names from data.yaml and labels/classes.txt, which must agree."""
        files = [p for p in (base / "data.yaml", base / "data.yml", self.root / "data.yaml",
                             base / "labels" / "classes.txt") if p.is_file()]
        if not files:
            raise DataError(f"{self.name}: no data.yaml or labels/classes.txt under {base}; "
                            f"the class order (documented {list(NAMES)}) is unknown")
        found = [(p, read_yolo_names(p)) for p in dict.fromkeys(files)]
        first, names = found[0]
        for p, other in found[1:]:
            if other != names:
                raise DataError(f"{self.name}: {first} lists {names} but {p} lists {other}")
        unknown = [n for n in names if n not in LABEL_MAP]
        if unknown:
            raise DataError(f"{self.name}: {first}: unknown class names {unknown}; this "
                            f"dataset's names are {list(LABEL_MAP)}")
        return names

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        base = self.base()
        names = self.class_names(base)
        img_dir, lab_dir = base / "images" / split, base / "labels" / split
        for d in (img_dir, lab_dir):
            if not d.is_dir():
                raise DataError(f"{self.name}: folder {d} is missing. Expected layout:\n"
                                f"{self.layout()}")
        images = {p.stem: p for p in sorted(img_dir.iterdir())
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}
        labels = {p.stem: p for p in sorted(lab_dir.glob("*.txt"))}
        for stem in sorted(set(labels) - set(images)):
            self.report(labels[stem], f"label file has no image in {img_dir}")
        for stem, image in images.items():
            if stem not in labels:
                self.report(image, f"image has no label file {lab_dir / (stem + '.txt')}")
                continue
            sample = self._sample(split, stem, image, labels[stem], names)
            if sample is not None:
                yield sample

    def _sample(self, split: str, stem: str, image: Path, txt: Path,
                names: List[str]) -> Optional[UnifiedSample]:
        try:
            width, height = image_size(image)
            rows = read_yolo(txt)
        except DataError as exc:
            report_reader_error(self, txt if str(exc).startswith(str(txt)) else image, exc)
            return None
        boxes, box_labels = [], []
        for k, row in enumerate(rows):
            if row.cls >= len(names):
                self.report(txt, f"class {row.cls} is not in the names {names}", row.line)
                return None
            box = fit_box(self, txt, yolo_to_xyxy(row, width, height), width, height,
                          f"box {k} ({names[row.cls]})", row.line)
            if box is None:
                return None
            boxes.append(box)
            box_labels.append(LABEL_MAP[names[row.cls]])
        return UnifiedSample(
            dataset=self.name, split=split, sample_id=stem, image_path=str(image),
            width=width, height=height, boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
            box_labels=box_labels,
            meta={"kind": "field", "annotation": str(txt), "license": self.license})

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        base = Path(root) / "TXL_PBC"
        w, h = 120, 90
        counts = {"train": 2, "val": 1, "test": 1}
        kinds = [0, 1, 1, 2]  # WBC, RBC, RBC, Platelets
        n = 0
        for split, count in counts.items():
            for _ in range(count):
                n += 1
                boxes = ex.layout_boxes(w, h, 4, size=20, seed=n)
                ex.write_smear(base / "images" / split / f"{split}_{n:04d}.jpg", w, h, boxes,
                               [NAMES[k] for k in kinds], seed=n)
                ex.write_yolo(base / "labels" / split / f"{split}_{n:04d}.txt",
                              [ex.yolo_row(k, b, w, h) for k, b in zip(kinds, boxes)])
        (base / "labels" / "classes.txt").write_text("\n".join(NAMES) + "\n", encoding="utf-8")
        (base / "data.yaml").write_text(
            "train: images/train\nval: images/val\ntest: images/test\n"
            f"nc: {len(NAMES)}\nnames: [{', '.join(NAMES)}]\n", encoding="utf-8")
        return counts
