"""IML-Malaria: thin-smear images with boxes of red cells, white cells and parasite stages."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._detseg import report_error
from dataset_adapters._splits import assign_splits, count_splits
from dataset_adapters.bbbc041 import bbbc_samples, write_bbbc_example
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats import read_bbbc_json
from unihema.data.sample import UnifiedSample

#: category -> canonical term
LABEL_MAP: Dict[str, str] = {
    "red blood cell": "red blood cell",
    "white blood cell": "white blood cell",
    "leukocyte": "white blood cell",
    "ring": "ring form",
    "trophozoite": "trophozoite",
    "schizont": "schizont",
    "gametocyte": "gametocyte",
}

#: split -> annotation file names accepted for it (the official split, when present)
SPLIT_FILES = {"train": ("train.json", "training.json"), "val": ("val.json", "valid.json"),
               "test": ("test.json",)}
#: the single annotation file of a release without split files
ALL_FILE = "annotations.json"


@register_adapter("iml_malaria")
class IMLMalaria(DatasetAdapter):
    """IML-Malaria (intelligentMachines-ITU): 345 P. vivax thin-smear images, life stages.

    <root>/
      images/<name>.jpg                field image
      train.json, [val.json,] test.json  boxes in the BBBC041 JSON format: a list of
                                       {"image": {"pathname": "/images/<name>.jpg", "shape":
                                       {"r", "c", "channels"}}, "objects": [{"bounding_box":
                                       {"minimum": {"r", "c"}, "maximum": {"r", "c"}},
                                       "category": ...}]}
      or annotations.json              all images in one file (no official split)

    Categories (LABEL_MAP): red blood cell, white blood cell (or leukocyte), ring -> ring
    form, trophozoite, schizont, gametocyte. With split files they are the official split;
    with ``annotations.json`` alone, splits are ``seeded_split`` (70/10/20, seed 0) over the
    image pathname. The catalogue says only "JSON boxes": that the JSON follows the BBBC041
    format (which the IML paper benchmarks against) and the file names are documentation-
    derived assumptions, not seen; ``data check`` names what differs.
    """

    tasks = ("detect",)
    splits = ("train", "val", "test")
    classes = {"detect": tuple(dict.fromkeys(LABEL_MAP.values()))}
    license = "see source (research use; cite the paper)"
    citation = ("Arshad QA, et al. A Dataset and Benchmark for Malaria Life-Cycle "
                "Classification in Thin Blood Smear Images. Neural Computing and Applications, "
                "2022")
    url = "https://github.com/intelligentMachines-ITU"
    size = "345 images, about 38,000 cells"
    access = ("linked from the intelligentMachines-ITU GitHub pages of the paper; unpack so "
              "that images/ and the JSON files lie in the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        split_files = [self.root / n for names in SPLIT_FILES.values() for n in names]
        if any(p.is_file() for p in split_files):
            for name in SPLIT_FILES[split]:
                if (self.root / name).is_file():
                    yield from bbbc_samples(self, split, self.root / name, LABEL_MAP)
            return
        path = self.root / ALL_FILE
        if not path.is_file():
            known = ", ".join(p.name for p in split_files)
            raise DataError(f"{self.name}: no annotation file ({known} or {ALL_FILE}) in "
                            f"{self.root}. Expected layout:\n{self.layout()}")
        try:
            entries = read_bbbc_json(path)
        except DataError as exc:
            report_error(self, path, exc)
            return
        assignment = assign_splits([e.pathname for e in entries])
        chosen = [e for e in entries if assignment[e.pathname] == split]
        yield from bbbc_samples(self, split, path, LABEL_MAP, chosen)

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        cats = ["red blood cell", "white blood cell", "ring", "trophozoite", "schizont",
                "gametocyte"]
        write_bbbc_example(root, {ALL_FILE: 10}, cats, ext=".jpg")
        entries = read_bbbc_json(root / ALL_FILE)
        return count_splits(assign_splits([e.pathname for e in entries]), cls.splits)
