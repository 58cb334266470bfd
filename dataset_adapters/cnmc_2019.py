"""C-NMC 2019 (ISBI challenge): leukemic B lymphoblasts vs normal B cells, ~15k crops."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional

from dataset_adapters._classification import CropClassifier, classes_of, write_crops
from unihema.data.catalog import DataError, register_adapter
from unihema.data.formats import read_csv_table
from unihema.data.sample import UnifiedSample

#: class folder (training data) -> canonical term; "all" = ALL blast, "hem" = normal B cell
LABEL_MAP: Dict[str, str] = {"all": "lymphoblast", "hem": "lymphocyte"}
#: ``labels`` column of the preliminary-test table -> class folder name
TEST_LABELS: Dict[str, str] = {"1": "all", "0": "hem"}

TRAIN = "C-NMC_training_data"
TEST = "C-NMC_test_prelim_phase_data"
TEST_TABLE = "C-NMC_test_prelim_phase_data_labels.csv"
FOLDS = ("fold_0", "fold_1", "fold_2")
#: unihema split -> the training folds it holds
SPLIT_FOLDS: Dict[str, tuple] = {"train": ("fold_0", "fold_1"), "val": ("fold_2",),
                                 **{f: (f,) for f in FOLDS}}
_UID = re.compile(r"^UID_([^_]+)_", re.IGNORECASE)


def patient_of(file_name: str) -> Optional[str]:
    """Subject id in a C-NMC file name: ``UID_11_10_1_all.bmp`` -> ``"11"``,
    ``UID_H10_43_1_hem.bmp`` -> ``"H10"``; ``None`` for other names."""
    m = _UID.match(file_name)
    return m.group(1) if m else None


@register_adapter("cnmc_2019")
class Cnmc2019(CropClassifier):
    """C-NMC 2019: 450x450 BMP crops of single B cells (ALL blast or normal), patient-wise folds.

    <root>/
      C-NMC_training_data/
        fold_<k>/all/UID_<subject>_<image>_<cell>_all.bmp     k = 0, 1, 2
        fold_<k>/hem/UID_H<subject>_<image>_<cell>_hem.bmp
      C-NMC_test_prelim_phase_data/                          (optional: split "test")
        <n>.bmp                                              (or one folder level deeper)
        C-NMC_test_prelim_phase_data_labels.csv              Patient_ID,new_names,labels
                                                             (original name, <n>.bmp, 1 all/0 hem)

    Splits: the official folds (patient-disjoint) are ``fold_0``, ``fold_1``, ``fold_2``; for
    a fixed train/validation use, ``train`` = fold_0 + fold_1 and ``val`` = fold_2; ``test`` is
    the labelled preliminary-test set. The subject id parsed from ``UID_<subject>_...`` is the
    ``patient_id``. The final-test images carry no labels and are not read. The layout of the
    training folds is taken from the TCIA description and the catalogue; the preliminary-test
    table from the challenge documentation only (not seen).
    """

    splits = ("train", "val", "test") + FOLDS
    label_map = LABEL_MAP
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "CC BY 3.0"
    citation = ("Gupta A, Gupta R. ALL Challenge dataset of ISBI 2019 (C-NMC 2019) [Data set]. "
                "The Cancer Imaging Archive, 2019. doi:10.7937/tcia.2019.dc64i46r")
    url = "https://doi.org/10.7937/tcia.2019.dc64i46r"
    size = "15,135 images (training folds)"
    access = ("The Cancer Imaging Archive (TCIA), collection C-NMC 2019: download the zip "
              "(no login) and extract it into the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        if split == "test":
            yield from self._load_test()
            return
        train = self.root / TRAIN
        if not train.is_dir():
            raise DataError(f"{self.name}: {train} is not a folder. Expected layout:\n"
                            f"{self.layout()}")
        for fold in SPLIT_FOLDS[split]:
            base = train / fold
            if not base.is_dir():
                self.report(base, f"fold folder is missing (split '{split}' reads "
                                  f"{', '.join(SPLIT_FOLDS[split])})")
                continue
            for path, label, raw, _ in self.scan_classes(base):
                sample = self.crop(split, path, label, raw, f"{fold}/{path.stem}",
                                   patient_id=patient_of(path.name), fold=fold)
                if sample is not None:
                    yield sample

    def _load_test(self) -> Iterable[UnifiedSample]:
        folder = self.root / TEST
        tables = sorted(folder.rglob(TEST_TABLE)) if folder.is_dir() else []
        if not tables:
            raise DataError(f"{self.name}: split 'test' needs {folder / TEST_TABLE} (the "
                            f"labelled preliminary-test set); not found")
        table = tables[0]
        try:
            rows = read_csv_table(table, required=("Patient_ID", "new_names", "labels"))
        except DataError as exc:
            self.report(table, str(exc))
            return
        dirs: List[Path] = [table.parent] + sorted(p for p in table.parent.iterdir()
                                                   if p.is_dir())
        for row in rows:
            line = int(row["_line"])
            raw = TEST_LABELS.get(str(row["labels"]))
            if raw is None:
                self.report(table, f"labels is {row['labels']!r}, expected 1 (all) or 0 (hem)",
                            line=line)
                continue
            name = str(row["new_names"])
            path = next((d / name for d in dirs if (d / name).is_file()), None)
            if path is None:
                self.report(table, f"image '{name}' listed here is missing beside the table",
                            line=line)
                continue
            original = str(row["Patient_ID"])
            sample = self.crop("test", path, LABEL_MAP[raw], raw, Path(name).stem,
                               patient_id=patient_of(original), original_name=original)
            if sample is not None:
                yield sample

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        per_fold = {}
        for k, fold in enumerate(FOLDS):
            files = [f"{TRAIN}/{fold}/all/UID_{k + 1}{j}_{i}_1_all.bmp"
                     for j in range(2) for i in range(1, 2)]
            files += [f"{TRAIN}/{fold}/hem/UID_H{k + 1}{j}_{i}_1_hem.bmp"
                      for j in range(1) for i in range(1, 3)]
            write_crops(root, files, size=(64, 64))
            per_fold[fold] = len(files)
        tests = [("UID_57_29_1_all.bmp", "1.bmp", "1"), ("UID_H7_3_2_hem.bmp", "2.bmp", "0"),
                 ("UID_58_1_1_all.bmp", "3.bmp", "1")]
        folder = root / TEST
        write_crops(folder, [new for _, new, _ in tests], size=(64, 64))
        (folder / TEST_TABLE).write_text(
            "Patient_ID,new_names,labels\n"
            + "".join(f"{orig},{new},{lab}\n" for orig, new, lab in tests), encoding="utf-8")
        out = {s: sum(per_fold[f] for f in folds) for s, folds in SPLIT_FOLDS.items()}
        out["test"] = len(tests)
        return out
