"""Sickle cells in thin blood smears photographed in Uganda (Tushabe et al. 2024)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._detection import voc_sample, yolo_samples
from dataset_adapters._splits import assign_splits, count_splits, files_by_split
from unihema.data.catalog import DatasetAdapter, register_adapter
from unihema.data.sample import UnifiedSample

#: raw class name (VOC <name> or YOLO names file) -> canonical term
LABEL_MAP: Dict[str, str] = {
    "sickle": "sickle cell",
    "sickle cell": "sickle cell",
    "sickled": "sickle cell",
    "normal": "red blood cell",
    "normal cell": "red blood cell",
    "rbc": "red blood cell",
    "red blood cell": "red blood cell",
}


@register_adapter("sickle_cell_uganda")
class SickleCellUganda(DatasetAdapter):
    """Sickle-cell smear images with cell boxes, as released with the paper (VOC or YOLO).

    Either a Pascal VOC release:

    <root>/
      JPEGImages/<name>.jpg           thin-smear photo
      Annotations/<name>.xml          one <object> per cell, <name> sickle | normal

    or a YOLO release:

    <root>/
      classes.txt | data.yaml         class names (sickle, normal)
      images/<name>.jpg
      labels/<name>.txt               "cls cx cy w h", normalised

    (with optional ``train``/``val``/``test`` folders inside images/ and labels/ or around
    them, read as the official split). The format is chosen by what the root holds (any
    ``.xml`` file: VOC). VOC boxes are read as 0-based pixel edges. Without split folders,
    splits are ``seeded_split`` (70/10/20, seed 0) over the annotation path. Both layouts and
    the class names are taken from the catalogue (the release format was not seen);
    ``data check`` names any other label.
    """

    tasks = ("detect",)
    splits = ("train", "val", "test")
    classes = {"detect": ("sickle cell", "red blood cell")}
    license = "see source (paper supplement; cite the paper)"
    citation = ("Tushabe F, et al. Sickle cell disease: thin blood smear images with annotated "
                "sickle cells, Uganda, 2024 (dataset released as the paper's supplement)")
    #: the catalogue names the paper supplement, not a web address
    url = "paper supplement of Tushabe et al. 2024 (no direct address in the catalogue)"
    size = "thin-smear images with sickle and normal cell boxes"
    access = ("download the supplementary data of the paper; unpack so that JPEGImages/ and "
              "Annotations/ (VOC) or images/, labels/ and classes.txt (YOLO) lie in the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        if any(p.is_file() for p in self.root.rglob("*.xml")):
            for xml in files_by_split(self, "*.xml", split):
                sample = voc_sample(self, split, xml, None, LABEL_MAP,
                                    xml.relative_to(self.root).with_suffix("").as_posix(),
                                    one_based=False)
                if sample is not None:
                    yield sample
        else:
            yield from yolo_samples(self, split, LABEL_MAP)

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        keys = []
        for i in range(10):
            name = f"IMG_{20240100 + i}"
            boxes = ex.layout_boxes(160, 120, 4, size=26, seed=i)
            names = ["sickle" if j % 2 else "normal" for j in range(4)]
            ex.write_smear(root / "JPEGImages" / f"{name}.jpg", 160, 120, boxes, names, seed=i)
            ex.write_voc(root / "Annotations" / f"{name}.xml", f"{name}.jpg", 160, 120,
                         [(n, tuple(int(v) for v in b)) for n, b in zip(names, boxes)])
            keys.append(f"Annotations/{name}.xml")
        return count_splits(assign_splits(keys), cls.splits)
