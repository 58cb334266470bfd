"""BCCD: 364 blood-smear fields (640x480) with Pascal VOC boxes of RBC, WBC and platelets."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional

from dataset_adapters import _examples as ex
from dataset_adapters._detection import voc_sample
from unihema.data.boxes import FIT_BORDER
from unihema.data.catalog import DataError, DatasetAdapter, Problem, register_adapter
from unihema.data.sample import UnifiedSample
from unihema.data.splitlists import read_split_list, unlisted_notes

#: raw VOC ``<name>`` -> canonical class
LABEL_MAP: Dict[str, str] = {
    "RBC": "red blood cell",
    "WBC": "white blood cell",
    "Platelets": "platelet",
}
CLASSES = ("red blood cell", "white blood cell", "platelet")


def voc_field_sample(adapter: DatasetAdapter, split: str, sample_id: str, xml: Path,
                     image: Path, label_map: Mapping[str, str]) -> Optional[UnifiedSample]:
    """One field-of-view sample from a VOC file of the devkit layout (bccd, cbc), or ``None``
    once its problem is reported: :func:`dataset_adapters._detection.voc_sample` with 1-based
    coordinates, the :data:`~unihema.data.boxes.FIT_BORDER` box policy (1 px onto the border,
    noted; a box farther out or empty leaves the image out), each object's ``truncated``
    flag and the annotation path in ``meta``, and boxes with a side under 2 px kept, listed in
    ``meta["tiny_boxes"]`` and noted."""
    return voc_sample(adapter, split, xml, image, label_map, sample_id, one_based=True,
                      policy=FIT_BORDER, flags=("truncated",), tiny_side=2.0,
                      meta={"annotation": str(xml)})


@register_adapter("bccd")
class BCCD(DatasetAdapter):
    """BCCD_Dataset (Shenggan), Pascal VOC layout, as cloned from GitHub.

    <root>/                          the repository clone, or its BCCD/ folder itself
      BCCD/Annotations/BloodImage_<nnnnn>.xml   Pascal VOC, one <object> per cell:
                                               <name> RBC | WBC | Platelets, <bndbox>
      BCCD/JPEGImages/BloodImage_<nnnnn>.jpg    640x480 RGB
      BCCD/ImageSets/Main/{train,val,trainval,test}.txt   image ids, one a line

    Splits: the official ImageSets/Main train (205), val (87) and test (72) lists; trainval.txt
    must equal train + val and test must not overlap it (a mismatch is reported). A listed id
    without its image, a repeated id and an empty list are problems (file and line); an image
    that no list names is a note of `unihema data check` (the real BCCD has none).

    Image size: read from each image's header; a <size> that disagrees is a problem of the XML
    and its image is left out (all 364 agree: 640x480).
    Boxes: the VOC devkit's 1-based inclusive indices, converted to pixel edges by
    x0 = xmin - 1, y0 = ymin - 1, x1 = xmax, y1 = ymax (so 1..640 spans the full width). An
    edge past the image by at most 1 px is moved onto the border with a note; a box farther out
    or empty is a problem and its image is left out. Two RBC boxes of the source are single
    points (xmin == xmax, ymin == ymax: BloodImage_00338, BloodImage_00343); under the
    inclusive convention they are valid 1x1 px boxes, kept as the source has them (they are
    part of its 4,155 RBC), listed in meta["tiny_boxes"] and noted by `unihema data check`.
    Labels: RBC -> red blood cell, WBC -> white blood cell, Platelets -> platelet. Layout
    seen on the real files (commit d272fb1).
    """

    tasks = ("detect",)
    splits = ("train", "val", "test")
    classes = {"detect": CLASSES}
    size = "364 images"
    license = "MIT"
    citation = ("Shenggan. BCCD Dataset: a small-scale dataset for blood cells detection. "
                "GitHub, 2017. https://github.com/Shenggan/BCCD_Dataset")
    url = "https://github.com/Shenggan/BCCD_Dataset"
    downloads = ({"url": "https://github.com/Shenggan/BCCD_Dataset/archive/refs/heads/master.zip",
                  "sha256": None, "filename": "BCCD_Dataset-master.zip"},)
    #: the ImageSets/Main lists once read (:meth:`_lists`)
    _ids: Optional[Dict[str, Dict[str, int]]] = None

    def base(self) -> Path:
        """The folder holding Annotations/, JPEGImages/ and ImageSets/."""
        for cand in (self.root / "BCCD", self.root):
            if (cand / "Annotations").is_dir() and (cand / "JPEGImages").is_dir():
                return cand
        raise DataError(f"{self.name}: no Annotations/ and JPEGImages/ under {self.root} or "
                        f"{self.root / 'BCCD'}. Expected layout:\n{self.layout()}")

    def _lists(self, sets: Path) -> Dict[str, Dict[str, int]]:
        """The four ImageSets/Main lists (id -> line), read and cross-checked once per adapter
        (so that each problem of a list is reported once, not in every split's load)."""
        if self._ids is None:
            lists = {}
            for name in ("train", "val", "trainval", "test"):
                try:
                    lists[name] = read_split_list(sets / f"{name}.txt", self.report)
                except DataError as exc:
                    raise DataError(f"{self.name}: {exc}") from None
            self._check_trainval(sets, lists)
            self._ids = lists
        return self._ids

    def _check_trainval(self, sets: Path, lists: Mapping[str, Iterable[str]]) -> None:
        train, val, trainval, test = (set(lists[k]) for k in ("train", "val", "trainval",
                                                              "test"))
        if train & val:
            self.report(sets / "val.txt", f"ids also in train.txt: {sorted(train & val)[:5]}")
        if trainval != train | val:
            diff = sorted(trainval ^ (train | val))[:5]
            self.report(sets / "trainval.txt", f"differs from train.txt + val.txt (e.g. {diff})")
        if test & trainval:
            self.report(sets / "test.txt", f"ids also in trainval: {sorted(test & trainval)[:5]}")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        base = self.base()
        sets = base / "ImageSets" / "Main"
        for sid, line in self._lists(sets)[split].items():
            image = base / "JPEGImages" / f"{sid}.jpg"
            if not image.is_file():
                self.report(sets / f"{split}.txt", f"id '{sid}' names no image ({image} not "
                                                   f"found)", line)
                continue
            sample = voc_field_sample(self, split, sid, base / "Annotations" / f"{sid}.xml",
                                      image, LABEL_MAP)
            if sample is not None:
                yield sample

    def images_in_no_split(self) -> List[Problem]:
        """JPEGImages/*.jpg that none of train.txt, val.txt and test.txt names (notes)."""
        base = self.base()
        sets = base / "ImageSets" / "Main"
        listed = [k for name in self.splits for k in self._lists(sets)[name]]
        images = [(p.stem, p) for p in sorted((base / "JPEGImages").glob("*.jpg"))]
        return unlisted_notes(images, [sets / f"{name}.txt" for name in self.splits], listed)

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        base = Path(root) / "BCCD"
        w, h = 128, 96
        names = {"train": [1, 2], "val": [3], "test": [5]}
        kinds = ["RBC", "RBC", "WBC", "Platelets"]
        for split, nums in names.items():
            for n in nums:
                sid = f"BloodImage_{n:05d}"
                boxes = ex.layout_boxes(w, h, 4, size=24, seed=n)
                ex.write_smear(base / "JPEGImages" / f"{sid}.jpg", w, h, boxes, kinds, seed=n)
                # 1-based inclusive indices, as the source writes them
                objs = [(k, tuple(int(v) for v in (b[0] + 1, b[1] + 1, b[2], b[3])))
                        for k, b in zip(kinds, boxes)]
                objs.append(("RBC", (1, 1, 12, 10)))  # touches the top-left corner
                ex.write_voc(base / "Annotations" / f"{sid}.xml", f"{sid}.jpg", w, h, objs)
        main = base / "ImageSets" / "Main"
        main.mkdir(parents=True, exist_ok=True)
        for split, nums in list(names.items()) + [("trainval", names["train"] + names["val"])]:
            (main / f"{split}.txt").write_text(
                "".join(f"BloodImage_{n:05d}\n" for n in nums), encoding="utf-8")
        return {split: len(nums) for split, nums in names.items()}
