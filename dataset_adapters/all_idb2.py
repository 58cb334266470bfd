"""ALL-IDB2 (Labati et al. 2011): 260 single-cell crops, lymphoblast or not."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, List

from dataset_adapters._classification import CropClassifier, classes_of, write_crops
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import DataError, register_adapter
from unihema.data.sample import UnifiedSample

#: the ``_<y>`` suffix of a file name -> canonical term (1: blast; 0: a normal cell, which in
#: ALL-IDB2 is a mature lymphocyte-like cell chosen as the negative of the blast)
LABEL_MAP: Dict[str, str] = {"1": "lymphoblast", "0": "lymphocyte"}
_NAME = re.compile(r"^Im(\d{3})_([01])$", re.IGNORECASE)
_SUFFIXES = (".tif", ".tiff")


@register_adapter("all_idb2")
class AllIdb2(CropClassifier):
    """ALL-IDB2: 257x257 TIFF crops centred on one cell; the label is in the file name.

    <root>/                         (or <root>/img/, or <root>/ALL_IDB2/img/)
      Im<nnn>_<y>.tif               y = 1: the centre cell is a lymphoblast, y = 0: it is not

    ``LABEL_MAP`` maps ``y``; the negative class is taken as ``lymphocyte`` (the source calls
    these cells "normal"/healthy without naming the type: a documented assumption). Any other
    ``.tif`` in the image folder is reported. The source has no official split and no patient
    ids: splits are ``unihema.data.splits.seeded_split`` (70/10/20, seed 0) over the image
    number. The layout is taken from the ALL-IDB web page and the catalogue, not from the files.
    """

    splits = ("train", "val", "test")
    label_map = LABEL_MAP
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "research use only (ALL-IDB terms of use; cite the ALL-IDB paper)"
    citation = ("Labati RD, Piuri V, Scotti F. ALL-IDB: the acute lymphoblastic leukemia image "
                "database for image processing. IEEE International Conference on Image "
                "Processing (ICIP), 2045-2048, 2011. doi:10.1109/ICIP.2011.6115881")
    url = "https://scotti.di.unimi.it/all/"
    size = "260 images"
    access = ("request access with the form on scotti.di.unimi.it/all (academic use); extract "
              "ALL_IDB2 into the root")

    def image_folder(self) -> Path:
        for cand in (self.root, self.root / "img", self.root / "ALL_IDB2" / "img"):
            if cand.is_dir() and any(p.suffix.lower() in _SUFFIXES for p in cand.iterdir()):
                return cand
        raise DataError(f"{self.name}: no Im<nnn>_<y>.tif images in {self.root}, "
                        f"{self.root / 'img'} or {self.root / 'ALL_IDB2' / 'img'}. Expected "
                        f"layout:\n{self.layout()}")

    def scan(self) -> List[tuple]:
        """``(path, y)`` of the well-named images; other ``.tif`` files are reported."""
        out = []
        for path in sorted(self.image_folder().iterdir()):
            if not path.is_file() or path.suffix.lower() not in _SUFFIXES:
                continue
            m = _NAME.match(path.stem)
            if m is None:
                self.report(path, "file name is not Im<nnn>_<y>.tif with y 0 or 1")
                continue
            out.append((path, m.group(2)))
        return out

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        items = self.scan()
        splits = self.assign_splits(items, key=lambda it: it[0].stem)
        for path, y in items:
            if splits[path.stem] == split:
                sample = self.crop(split, path, LABEL_MAP[y], y, path.stem)
                if sample is not None:
                    yield sample

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        names = [f"Im{n:03d}_{1 if n <= 5 else 0}" for n in range(1, 11)]
        write_crops(root, [f"{n}.tif" for n in names], size=(64, 64))
        return count_splits(assign_splits(names, seed=cls.split_seed), cls.splits)
