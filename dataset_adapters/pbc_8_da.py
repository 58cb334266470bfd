"""PBC 8-class domain-adaptation variant (figshare): PBC classes, optionally per domain."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._classification import CropClassifier, classes_of, write_crops
from dataset_adapters._splits import assign_splits, count_splits
from dataset_adapters.pbc_acevedo import LABEL_MAP as PBC_LABELS
from unihema.data.catalog import register_adapter
from unihema.data.sample import UnifiedSample

#: class folder -> canonical term: the eight PBC classes (plural "s" tolerated)
LABEL_MAP: Dict[str, str] = {**PBC_LABELS, "immature granulocyte": "immature granulocyte",
                             **{f"{k}s": v for k, v in PBC_LABELS.items() if k != "ig"}}
DOMAINS = ("source", "target")


@register_adapter("pbc_8_da")
class Pbc8Da(CropClassifier):
    """PBC 8-class domain-adaptation variant: single-cell crops, folder per class, per domain.

    <root>/
      <class>/*.{jpg,png}                 one domain, or
      <domain>/<class>/*.{jpg,png}        several domains (folder names kept as meta["group"]
                                          and meta["domain"])
      class: basophil, eosinophil, erythroblast, ig, lymphocyte, monocyte, neutrophil, platelet

    The domain level is recognised when no folder directly under the root is a class. Doubt:
    the catalogue says only "folder per class"; the optional domain level is an assumption for
    a domain-adaptation release. No official split given: splits are
    ``unihema.data.splits.seeded_split`` (70/10/20, seed 0) over the relative path. Layout from
    the catalogue only; it was not seen.
    """

    splits = ("train", "val", "test")
    label_map = LABEL_MAP
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "CC BY 4.0"
    citation = ("PBC 8-class domain-adaptation variant (figshare) of: Acevedo A, Merino A, "
                "Alferez S, Molina A, Boldu L, Rodellar J. A dataset of microscopic peripheral "
                "blood cell images for development of automatic recognition systems. Data in "
                "Brief 30:105474, 2020. doi:10.1016/j.dib.2020.105474")
    url = "https://figshare.com/search?q=PBC%20domain%20adaptation"
    access = "figshare (search 'PBC domain adaptation'); extract into the root"

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        for s in self.load_folders(split, self.root, groups=True):
            if "group" in s.meta:
                s.meta["domain"] = s.meta["group"]
            yield s

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        files = [f"{d}/{c}/{d}_{c}_{i}.jpg" for d in DOMAINS for c in PBC_LABELS for i in (1,)]
        write_crops(root, files, size=(64, 64))
        ids = [f[: -len(".jpg")] for f in files]
        return count_splits(assign_splits(ids, seed=cls.split_seed), cls.splits)
