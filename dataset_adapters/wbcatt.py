"""WBCAtt (Tsutsui et al. 2023): eleven morphology attributes of PBC white-cell images."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

from dataset_adapters._classification import CropClassifier, classes_of, write_crops
from dataset_adapters._examples import write_csv
from unihema.data.text import language
from unihema.data.catalog import DataError, register_adapter
from unihema.data.formats import read_csv_table
from unihema.data.sample import UnifiedSample
from unihema.data.vocab import ATTRIBUTES

#: ``label`` column -> canonical term (WBCAtt annotates the five white-cell classes of PBC)
LABEL_MAP: Dict[str, str] = {
    "Basophil": "basophil",
    "Eosinophil": "eosinophil",
    "Lymphocyte": "lymphocyte",
    "Monocyte": "monocyte",
    "Neutrophil": "neutrophil",
}
#: the attribute columns, in the CSV's order; exactly the project's attribute schema
ATTRIBUTE_COLUMNS = ("cell_size", "cell_shape", "nucleus_shape", "nuclear_cytoplasmic_ratio",
                     "chromatin_density", "cytoplasm_vacuole", "cytoplasm_texture",
                     "cytoplasm_colour", "granule_type", "granule_colour", "granularity")
COLUMNS = ("img_name", "label") + ATTRIBUTE_COLUMNS + ("path",)
TABLE = "pbc_attr_v1_{split}.csv"
PBC_FOLDER = "PBC_dataset_normal_DIB"

assert set(ATTRIBUTE_COLUMNS) == set(ATTRIBUTES), "WBCAtt columns must equal vocab.ATTRIBUTES"


def _spellings(value: str) -> List[str]:
    forms = {value, value.replace("-", " "), value.replace(" ", "-"), value.replace(" ", "_"),
             value.replace("-", "_")}
    return sorted(forms)


#: attribute -> accepted spelling (lower case; "-", " " and "_" interchangeable) -> value
VALUE_LOOKUP: Dict[str, Dict[str, str]] = {
    name: {s: v for v in values for s in _spellings(v)} for name, values in ATTRIBUTES.items()
}


def attribute_value(name: str, raw: str) -> Optional[str]:
    """The schema value of a raw cell (case and separators tolerated), or ``None``."""
    return VALUE_LOOKUP[name].get(" ".join(str(raw).strip().lower().split()))


@register_adapter("wbcatt")
class WbcAtt(CropClassifier):
    """WBCAtt attribute tables over the PBC images: morphology, questions and a report per cell.

    <root>/
      pbc_attr_v1_train.csv    columns img_name,label,cell_size,cell_shape,nucleus_shape,
      pbc_attr_v1_val.csv              nuclear_cytoplasmic_ratio,chromatin_density,
      pbc_attr_v1_test.csv             cytoplasm_vacuole,cytoplasm_texture,cytoplasm_colour,
                                       granule_type,granule_colour,granularity,path
      PBC_dataset_normal_DIB/<class>/<img>.jpg     the PBC images (see ``pbc_acevedo``)

    ``path`` is relative to the PBC root. The image is looked for at ``<pbc_root>/<path>``, then
    ``<pbc_root>/PBC_dataset_normal_DIB/<path>``, where ``pbc_root`` defaults to the root (the
    folder of the CSVs) and can be given as ``WbcAtt(root, pbc_root=...)`` when the PBC images
    live elsewhere; so both ``PBC_dataset_normal_DIB/basophil/BA_1.jpg`` and
    ``basophil/BA_1.jpg`` work. The eleven attribute columns are exactly
    ``unihema.data.vocab.ATTRIBUTES``; values match case-insensitively, with ``-``, ``_`` and
    space interchangeable; any other value is reported with the file, line and allowed values.

    Each row becomes a crop record with ``label`` (the cell type), ``attributes`` (morphology),
    ``qa`` (one type question and one question per attribute, ``unihema.data.text.language``) and
    ``report`` (``language.describe_cell``). The official train/val/test tables are the
    splits. The column list is from the catalogue; the form of ``path`` was not seen.
    """

    tasks = ("classify", "morphology", "mlm", "vqa")
    splits = ("train", "val", "test")
    label_map = LABEL_MAP
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "see source (WBCAtt annotations: github apple2373/wbcatt; PBC images CC BY 4.0)"
    citation = ("Tsutsui S, Pang W, Wen B. WBCAtt: a white blood cell dataset annotated with "
                "detailed morphological attributes. Advances in Neural Information Processing "
                "Systems 36 (NeurIPS 2023), Datasets and Benchmarks Track. Images: Acevedo A "
                "et al., Data in Brief 30:105474, 2020")
    url = "https://github.com/apple2373/wbcatt"
    size = "10,298 images"
    access = ("attribute CSVs from github apple2373/wbcatt; PBC images from Mendeley Data "
              "snkd93bnjr (see pbc_acevedo), extracted beside the CSVs or given as pbc_root")

    def __init__(self, root: Union[str, Path], *, on_error: str = "raise",
                 pbc_root: Optional[Union[str, Path]] = None) -> None:
        super().__init__(root, on_error=on_error)
        self.pbc_root = Path(pbc_root).expanduser() if pbc_root is not None else self.root

    def image_of(self, rel: str) -> Optional[Path]:
        for base in (self.pbc_root, self.pbc_root / PBC_FOLDER):
            if (base / rel).is_file():
                return base / rel
        return None

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        table = self.root / TABLE.format(split=split)
        try:
            rows = read_csv_table(table, required=COLUMNS)
        except DataError as exc:
            self.report(table, str(exc))
            return
        for row in rows:
            sample = self._row(split, table, row)
            if sample is not None:
                yield sample

    def _row(self, split: str, table: Path, row: Dict[str, object]) -> Optional[UnifiedSample]:
        line = int(row["_line"])
        raw = str(row["label"])
        label = self.label_of(raw)
        if label is None:
            self.unknown_label(table, raw, "label", line=line)
            return None
        attrs: Dict[str, str] = {}
        for name in ATTRIBUTE_COLUMNS:
            value = attribute_value(name, str(row[name]))
            if value is None:
                self.report(table, f"{name} is {row[name]!r}; expected one of "
                                   f"{', '.join(ATTRIBUTES[name])}", line=line)
                return None
            attrs[name] = value
        rel = str(row["path"])
        path = self.image_of(rel)
        if path is None:
            self.report(self.pbc_root / rel, f"image listed at line {line} of {table} is "
                                             f"missing (also looked in {PBC_FOLDER}/)")
            return None
        sample = self.crop(split, path, label, raw, Path(str(row["img_name"])).stem)
        if sample is None:
            return None
        sample.attributes = attrs
        sample.qa = [language.qa_type("white blood cell", label)]
        sample.qa += [language.qa_attribute(name, value) for name, value in attrs.items()]
        sample.report = language.describe_cell(label, attrs)
        return sample

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        counts = {"train": 5, "val": 2, "test": 3}
        types = list(EXAMPLE_ATTRIBUTES)
        k = 0
        for split, n in counts.items():
            rows = []
            for _ in range(n):
                cell = types[k % len(types)]
                folder = cell.lower()
                name = f"{_PREFIX[cell]}_{1000 + k}.jpg"
                write_crops(root / PBC_FOLDER, [f"{folder}/{name}"], size=(72, 73))
                rows.append([name, cell, *EXAMPLE_ATTRIBUTES[cell],
                             f"{PBC_FOLDER}/{folder}/{name}"])
                k += 1
            write_csv(root / TABLE.format(split=split), COLUMNS, rows)
        return counts


_PREFIX = {"Basophil": "BA", "Eosinophil": "EO", "Lymphocyte": "LY", "Monocyte": "MO",
           "Neutrophil": "SNE"}
#: typical attribute rows per cell type (the example's values, in ATTRIBUTE_COLUMNS order)
EXAMPLE_ATTRIBUTES: Dict[str, Sequence[str]] = {
    "Neutrophil": ("big", "round", "segmented-multilobed", "low", "densely", "no", "clear",
                   "light blue", "small", "pink", "yes"),
    "Eosinophil": ("big", "round", "segmented-bilobed", "low", "densely", "no", "clear",
                   "light blue", "round", "red", "yes"),
    "Basophil": ("big", "round", "irregular", "high", "densely", "no", "clear", "purple blue",
                 "coarse", "purple", "yes"),
    "Lymphocyte": ("small", "round", "unsegmented-round", "high", "densely", "no", "clear",
                   "blue", "nil", "nil", "no"),
    "Monocyte": ("big", "irregular", "unsegmented-indented", "low", "loosely", "yes", "frosted",
                 "blue", "nil", "nil", "no"),
}
