"""Makerere AI lab: thick-smear photos taken through the microscope with a phone camera."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._detection import voc_sample
from dataset_adapters._splits import assign_splits, count_splits, files_by_split
from unihema.data.catalog import DatasetAdapter, register_adapter
from unihema.data.sample import UnifiedSample

#: VOC <name> -> canonical term (the lab annotates parasites of thick smears, one class)
LABEL_MAP: Dict[str, str] = {
    "plasmodium": "malaria parasite",
    "parasite": "malaria parasite",
}


@register_adapter("makerere_plasmodium")
class MakererePlasmodium(DatasetAdapter):
    """Makerere AI lab plasmodium dataset (thick smears, phone camera on the eyepiece).

    <root>/
      images/<name>.jpg            thick-smear photo
      annotations/<name>.xml       Pascal VOC-like XML, one <object> per parasite with
                                   <name> plasmodium (or parasite)

    Boxes are read as 0-based pixel edges (``read_voc(one_based=False)``; the lab's tools
    write edges) and clipped when they overshoot the border by up to 2 pixels. There is no
    official split and no patient id: splits are ``seeded_split`` (70/10/20, seed 0) over the
    annotation path. The layout comes from the lab's description (documentation), not from
    the files; an image whose XML has no <object> holds no parasite (zero boxes).
    """

    tasks = ("detect",)
    splits = ("train", "val", "test")
    classes = {"detect": ("malaria parasite",)}
    license = "see source (Makerere AI lab terms; cite the paper)"
    citation = ("Quinn JA, Nakasi R, Mugagga PKB, Byanyima P, Lubega W, Andama A. Deep "
                "Convolutional Neural Networks for Microscopy-Based Point of Care Diagnostics. "
                "Machine Learning for Healthcare Conference (MLHC), PMLR 56:271-281, 2016")
    url = "https://air.ug/datasets/"
    size = "about 1,200 images"
    access = ("download from the Makerere AI lab data page (https://air.ug/datasets/); unpack "
              "so that images/ and annotations/ lie in the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        for xml in files_by_split(self, "*.xml", split):
            sample = voc_sample(self, split, xml, None, LABEL_MAP, xml.stem, one_based=False)
            if sample is not None:
                yield sample

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        keys = []
        for i in range(10):
            name = f"plasmodium-{i + 1:04d}"
            boxes = ex.layout_boxes(160, 120, i % 3, size=16, seed=i)
            ex.write_smear(root / "images" / f"{name}.jpg", 160, 120, boxes,
                           ["parasite"] * len(boxes), seed=i)
            ex.write_voc(root / "annotations" / f"{name}.xml", f"{name}.jpg", 160, 120,
                         [("plasmodium", tuple(int(v) for v in b)) for b in boxes],
                         folder="images")
            keys.append(f"annotations/{name}.xml")
        return count_splits(assign_splits(keys), cls.splits)
