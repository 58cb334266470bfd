"""TXL-PBC: fields from BCCD, BCD, PBC and Raabin re-annotated, YOLO boxes of WBC, RBC,
platelets."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np

from dataset_adapters import _examples as ex
from dataset_adapters._detseg import report_error
from unihema.data.boxes import fit_box
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats import (IMAGE_EXTENSIONS, find_names_files, is_names_file, read_yolo,
                                  resolve_yolo_names, yolo_to_xyxy)
from unihema.data.io import image_size
from unihema.data.sample import UnifiedSample
from unihema.data.vocab import normalize

#: raw class name (data.yaml / classes.txt) -> canonical class. The release spells the third
#: class three ways: Platelets (data.yaml), Platelet (labels/classes.txt) and PC (the
#: labelling tool's labels/<split>/classes.txt; a platelet-count abbreviation used as a name).
LABEL_MAP: Dict[str, str] = {
    "WBC": "white blood cell",
    "RBC": "red blood cell",
    "Platelets": "platelet",
    "Platelet": "platelet",
    "PC": "platelet",
}
#: data.yaml's names in the release (class index i is NAMES[i])
NAMES = ("WBC", "RBC", "Platelets")


@register_adapter("txl_pbc")
class TXLPBC(DatasetAdapter):
    """TXL-PBC (lugan113/TXL-PBC_Dataset), YOLO layout.

    <root>/                              the repository clone, or its TXL_PBC/ folder itself
      TXL_PBC/data.yaml                  names: ['WBC', 'RBC', 'Platelets'], nc: 3
      TXL_PBC/images/{train,val,test}/<uuid>.jpg
      TXL_PBC/labels/{train,val,test}/<uuid>.txt   YOLO: `cls cx cy w h` a line, normalised
      TXL_PBC/labels/classes.txt         WBC / RBC / Platelet, one a line
      TXL_PBC/labels/{train,val,test}/classes.txt  WBC / RBC / PC (written by the labelling
                                         tool beside the labels: a names file, not a label)

    The release (1,440 images: train 1,008, val 288, test 144; 24,271 red cells, 1,515 white
    cells, 851 platelets) names the third class three ways, Platelets, Platelet and PC. Every
    names file found under the root is read and compared after mapping (WBC -> white blood
    cell, RBC -> red blood cell, Platelets / Platelet / PC -> platelet): spellings of the same
    classes are a note of ``data check``, names that map to different classes (a swapped
    order) are a problem and nothing is loaded, since the class order of the labels would be a
    guess. A names file is never taken for a label file.

    Splits: the source's train, val and test folders. Each image needs a label file of the same
    stem and each label file its image (a missing partner is a problem; an empty label file is
    an image without cells). Boxes are converted from normalised centre and size with the
    image's stored size; an edge past the image by at most 1 px is moved onto the border with a
    note, a box farther out is a problem.
    """

    tasks = ("detect",)
    splits = ("train", "val", "test")
    classes = {"detect": ("red blood cell", "white blood cell", "platelet")}
    size = "1,440 images"
    license = "MIT"
    citation = ("Gan L, Li X, Wang X. TXL-PBC: a freely accessible labeled peripheral blood cell "
                "dataset. arXiv:2407.13214, 2024.")
    url = "https://github.com/lugan113/TXL-PBC_Dataset"
    downloads = ({"url": "https://github.com/lugan113/TXL-PBC_Dataset/archive/refs/heads/"
                         "main.zip", "sha256": None, "filename": "TXL-PBC_Dataset-main.zip"},)
    #: the class names, once resolved (see :meth:`class_names`)
    _names: Optional[List[str]] = None

    def base(self) -> Path:
        for cand in (self.root / "TXL_PBC", self.root):
            if (cand / "images").is_dir() and (cand / "labels").is_dir():
                return cand
        raise DataError(f"{self.name}: no images/ and labels/ under {self.root} or "
                        f"{self.root / 'TXL_PBC'}. Expected layout:\n{self.layout()}")

    def class_names(self, base: Path) -> List[str]:
        """Names of data.yaml and every classes.txt, which must name the same classes.

        Resolved once per adapter (the note about spellings belongs to the dataset, not to
        each split); a disagreement raises :class:`DataError` every time.
        """
        if self._names is not None:
            return self._names
        files = find_names_files(self.root)
        if not files:
            raise DataError(f"{self.name}: no data.yaml or labels/classes.txt under {base}; "
                            f"the class order (documented {list(NAMES)}) is unknown")
        try:
            resolved = resolve_yolo_names(files, _canon, base=self.root)
        except DataError as exc:
            raise DataError(f"{self.name}: {exc}") from None
        unknown = [n for n in resolved.names if _canon(n) is None]
        if unknown:
            raise DataError(f"{self.name}: {resolved.source}: unknown class names {unknown}; "
                            f"this dataset's names are {list(LABEL_MAP)}")
        if resolved.note:
            self.note(resolved.source, resolved.note)
        self._names = list(resolved.names)
        return self._names

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
        labels = {p.stem: p for p in sorted(lab_dir.glob("*.txt")) if not is_names_file(p)}
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
            report_error(self, txt if str(exc).startswith(str(txt)) else image, exc)
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
            box_labels.append(_canon(names[row.cls]))
        return UnifiedSample(
            dataset=self.name, split=split, sample_id=stem, image_path=str(image),
            width=width, height=height, boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
            box_labels=box_labels,
            meta={"kind": "field", "annotation": str(txt), "license": self.license})

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        """The release's layout with its names quirks: data.yaml says Platelets,
        labels/classes.txt Platelet and each labels/<split>/classes.txt PC."""
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
        (base / "labels" / "classes.txt").write_text("WBC\nRBC\nPlatelet\n", encoding="utf-8")
        for split in counts:
            (base / "labels" / split / "classes.txt").write_text("WBC\nRBC\nPC\n",
                                                                  encoding="utf-8")
        (base / "data.yaml").write_text(
            "train: ./images/train/\nval: ./images/val/\ntest: ./images/test/\n"
            f"nc: {len(NAMES)}\nnames: {list(NAMES)}\n", encoding="utf-8")
        return counts


def _canon(raw: str) -> Optional[str]:
    """The canonical class of a raw name (case and separators aside), ``None`` if unknown."""
    key = normalize(raw)
    return next((v for k, v in LABEL_MAP.items() if normalize(k) == key), None)
