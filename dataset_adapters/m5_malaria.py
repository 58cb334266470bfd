"""M5 (CVPR 2022): thin-smear malaria images from two microscopes at three magnifications."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._detection import voc_sample
from dataset_adapters._splits import domain_of, files_by_split
from unihema.data.catalog import DatasetAdapter, register_adapter
from unihema.data.sample import UnifiedSample

#: VOC <name> -> canonical life-cycle stage
LABEL_MAP: Dict[str, str] = {
    "ring": "ring form",
    "trophozoite": "trophozoite",
    "schizont": "schizont",
    "gametocyte": "gametocyte",
}


@register_adapter("m5_malaria")
class M5Malaria(DatasetAdapter):
    """M5-Malaria (github intelligentMachines-ITU/LowCostMalariaDetection_CVPR_2022).

    <root>/
      <microscope>/<magnification>/           e.g. HCM/1000x, LCM/400x (high- and low-cost
                                              microscope; kept in meta["domain"])
        {train,val,test}/<name>.jpg           thin-smear field image
        {train,val,test}/<name>.xml           Pascal VOC, one <object> per parasite, <name>
                                              ring | trophozoite | schizont | gametocyte
                                              (any case); the image may also lie in a sibling
                                              images/ folder

    Boxes are read as 0-based pixel edges (``read_voc(one_based=False)``, the convention of
    annotation tools, not of the VOC devkit) and clipped when they overshoot the border by up
    to 2 pixels. Splits are the official split folders (``valid`` read as val); without any
    split folder, ``seeded_split`` (70/10/20, seed 0) over the file path. The folder layout
    and the class spellings come from the paper and the catalogue (documentation), not from
    the files; ``data check`` names any other label it finds.
    """

    tasks = ("detect",)
    splits = ("train", "val", "test")
    classes = {"detect": tuple(LABEL_MAP.values())}
    license = "see source (research use; cite the paper)"
    citation = ("Sultani W, et al. Towards Low-Cost and Efficient Malaria Detection. IEEE/CVF "
                "Conference on Computer Vision and Pattern Recognition (CVPR), 2022")
    url = "https://github.com/intelligentMachines-ITU/LowCostMalariaDetection_CVPR_2022"
    size = "about 1,500 images x 6 microscope/magnification settings"
    access = ("the repository's README links the dataset (shared drive / request form); "
              "unpack so that the microscope folders lie in the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        for xml in files_by_split(self, "*.xml", split):
            rel = xml.relative_to(self.root).with_suffix("")
            sample = voc_sample(self, split, xml, None, LABEL_MAP, rel.as_posix(),
                                one_based=False,
                                meta={"domain": domain_of(xml.relative_to(self.root))})
            if sample is not None:
                yield sample

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        counts = {"train": 2, "val": 1, "test": 1}
        k = 0
        stages = list(LABEL_MAP)
        for split, n in counts.items():
            for i in range(n):
                folder = root / ("HCM/1000x" if k % 2 == 0 else "LCM/400x") / split
                boxes = ex.layout_boxes(160, 120, 3, size=24, seed=k)
                names = [stages[(k + j) % 4] for j in range(3)]
                name = f"{k + 1:04d}"
                ex.write_smear(folder / f"{name}.jpg", 160, 120, boxes, names, seed=k)
                ex.write_voc(folder / f"{name}.xml", f"{name}.jpg", 160, 120,
                             [(nm.capitalize(), tuple(int(v) for v in b))
                              for nm, b in zip(names, boxes)], folder=split)
                k += 1
        return counts
