"""erythrocytesIDB: red cells of sickle-cell patients: classified single cells and masked fields."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable

from dataset_adapters._detseg import class_folder_samples, mask_samples
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.sample import UnifiedSample

#: single-cell class folder -> canonical term
LABEL_MAP: Dict[str, str] = {
    "circular": "red blood cell",
    "elongated": "sickle cell",
    "other": "poikilocyte",
}
#: mask pixel value -> canonical class
MASK_VALUES: Dict[int, str] = {0: "background", 1: "red blood cell", 255: "red blood cell"}
CELLS = "erythrocytesIDB1/individual cells"
FIELDS = "erythrocytesIDB2"


@register_adapter("erythrocytes_idb")
class ErythrocytesIdb(DatasetAdapter):
    """erythrocytesIDB (University of the Balearic Islands): sickle-cell disease smears.

    <root>/
      erythrocytesIDB1/individual cells/<class>/<name>.jpg   single red-cell crop; class
                                                             circular | elongated | other
      erythrocytesIDB2/images/<name>.jpg                     field image
      erythrocytesIDB2/masks/<name>.png                      red-cell mask of the same name
                                                             and size: 0 background,
                                                             255 (or 1) red cell

    Crops are classified (circular -> red blood cell, elongated -> sickle cell, other ->
    poikilocyte); fields are segmented. Either part may be absent. There is no official
    split and no patient id: each part is split by ``seeded_split`` (70/10/20, seed 0) over
    its relative paths. The folder names and the mask coding are taken from the database's
    web page (documentation), not from the files.
    """

    tasks = ("segment", "classify")
    splits = ("train", "val", "test")
    classes = {"segment": ("background", "red blood cell"),
               "classify": tuple(LABEL_MAP.values())}
    license = "research use (cite the papers; terms on the database page)"
    citation = ("Gonzalez-Hidalgo M, et al. Red Blood Cell Cluster Separation From Digital "
                "Images for Use in Sickle Cell Disease. IEEE Journal of Biomedical and Health "
                "Informatics 19(4), 2015")
    url = "http://erythrocytesidb.uib.es/"
    size = "629 single-cell crops and 50 segmented fields"
    access = ("request the database on http://erythrocytesidb.uib.es/ (a form); unpack so that "
              "erythrocytesIDB1/ and erythrocytesIDB2/ lie in the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        cells, fields = self.root / CELLS, self.root / FIELDS
        if not cells.is_dir() and not fields.is_dir():
            raise DataError(f"{self.name}: neither {CELLS}/ nor {FIELDS}/ in {self.root}. "
                            f"Expected layout:\n{self.layout()}")
        if fields.is_dir():
            yield from mask_samples(self, split, fields / "images", fields / "masks",
                                    MASK_VALUES, prefix="fields/", kind="field")
        if cells.is_dir():
            yield from class_folder_samples(self, split, cells, LABEL_MAP, prefix="cells/")

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        cell_keys, field_keys = [], []
        for folder in LABEL_MAP:
            for i in range(3):
                ex.write_crop(root / CELLS / folder / f"{i + 1}.jpg", 48, "rbc", seed=i)
                cell_keys.append(f"{folder}/{i + 1}")
        for i in range(5):
            boxes = ex.layout_boxes(160, 120, 4, size=26, seed=i)
            ex.write_smear(root / FIELDS / "images" / f"{i + 1}.jpg", 160, 120, boxes,
                           ["rbc"] * 4, seed=i)
            ex.write_mask(root / FIELDS / "masks" / f"{i + 1}.png",
                          ex.ellipse_mask(120, 160, boxes, [255] * 4))
            field_keys.append(str(i + 1))
        cells = count_splits(assign_splits(cell_keys), cls.splits)
        fields = count_splits(assign_splits(field_keys), cls.splits)
        return {s: cells[s] + fields[s] for s in cls.splits}
