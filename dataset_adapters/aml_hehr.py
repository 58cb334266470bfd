"""AML-Cytomorphology_MLL_Helmholtz (Hehr et al. 2023): 101,949 cells of 189 patients."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from dataset_adapters._classification import PatientTable, classes_of, write_crops
from dataset_adapters._patients import PatientBags
from dataset_adapters._splits import assign_splits, count_splits
from dataset_adapters._examples import write_csv
from unihema.data.catalog import register_adapter
from unihema.data.formats import scan_class_folders
from unihema.data.sample import UnifiedSample

#: patient diagnosis (table value or subtype folder name) -> canonical term
LABEL_MAP: Dict[str, str] = {
    "PML::RARA": "pml::rara",
    "PML_RARA": "pml::rara",
    "NPM1": "npm1",
    "CBFB::MYH11": "cbfb::myh11",
    "CBFB_MYH11": "cbfb::myh11",
    "RUNX1::RUNX1T1": "runx1::runx1t1",
    "RUNX1_RUNX1T1": "runx1::runx1t1",
    "control": "healthy",
}
TABLE_NAMES = ("metadata.csv", "patients.csv")
#: the genetic class is the diagnosis: each implies its alteration (controls: none of them)
DIAGNOSIS_FINDINGS: Dict[str, Tuple[str, ...]] = {
    "pml::rara": ("PML::RARA",), "npm1": ("NPM1",), "cbfb::myh11": ("CBFB::MYH11",),
    "runx1::runx1t1": ("RUNX1::RUNX1T1",), "healthy": ()}


@register_adapter("aml_hehr")
class AmlHehr(PatientBags, PatientTable):
    """AML-Cytomorphology_MLL_Helmholtz: single white-cell TIFF crops, a folder per patient.

    <root>/
      metadata.csv                       one row per patient (or patients.csv, or the only
                                         *.csv; or ``AmlHehr(root, table="x.csv")``) with a
                                         patient column (patient_id / patient / ID) and a
                                         diagnosis column (diagnosis / diagnose / label /
                                         subtype): PML::RARA, NPM1, CBFB::MYH11,
                                         RUNX1::RUNX1T1 or control ("_" for "::" accepted)
      [<subtype>/]<patient_id>/*.tif     the patient's cells; an optional grouping folder
                                         (the release groups patients by subtype) is allowed

    The cells carry no cell-type labels: each cell's ``label`` is its patient's diagnosis (a
    weak, patient-level label; the task is multiple-instance in nature), also kept in
    ``meta["patient_label"]``, and ``patient_id`` is set. The sample contract has no
    patient-level task, so patient-level prediction aggregates cell outputs by ``patient_id``;
    ``bags()`` gives one :class:`~unihema.data.patients.PatientBag` per patient (all splits):
    label the diagnosis, findings the alteration that defines it (``["NPM1"]``; none for a
    control) plus those of an optional findings column of the table (``findings`` /
    ``genetics`` / ``mutations``: ``"NPM1; FLT3-ITD"``). Folders not in the table, and
    listed patients without a folder, are reported. No official split:
    ``unihema.data.splits.seeded_split`` (70/10/20, seed 0) grouped by patient (no patient in
    two splits). The layout (table name and columns in particular) is taken from
    the TCIA description and the catalogue only; it was not seen.
    """

    splits = ("train", "val", "test")
    label_map = LABEL_MAP
    diagnosis_map = LABEL_MAP
    table_names = TABLE_NAMES
    patient_columns = ("patient_id", "patient", "id", "patient id")
    diagnosis_columns = ("diagnosis", "diagnose", "label", "subtype", "class")
    diagnosis_findings = DIAGNOSIS_FINDINGS
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "CC BY 4.0"
    citation = ("Hehr M, Sadafi A, Matek C, Lienemann P, Pohlkamp C, Haferlach T, Spiekermann "
                "K, Marr C. Explainable AI identifies diagnostic cells of genetic AML subtypes. "
                "PLOS Digital Health 2(3):e0000187, 2023. doi:10.1371/journal.pdig.0000187. "
                "Data: The Cancer Imaging Archive, AML-Cytomorphology_MLL_Helmholtz")
    url = "https://www.cancerimagingarchive.net/collection/aml-cytomorphology_mll_helmholtz/"
    size = "101,949 images, 189 patients"
    access = ("The Cancer Imaging Archive (TCIA), collection AML-Cytomorphology_MLL_Helmholtz: "
              "download with the TCIA/Aspera link (no login); extract into the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        patients = self.read_patients()
        folders = self.patient_folders(patients)
        by_parent: Dict[Path, Dict[str, List[Path]]] = {}
        for parent in sorted({folder.parent for folder, _ in folders.values()}):
            found = by_parent.setdefault(parent, {})
            for path, name in scan_class_folders(parent):  # one scan per parent folder
                found.setdefault(name, []).append(path)
        items = []
        for pid, (folder, group) in sorted(folders.items()):
            files = by_parent[folder.parent].get(folder.name, [])
            if not files:
                self.report(folder, "patient folder holds no image")
            items.extend((pid, p, group) for p in files)
        keys = {(pid, p): f"{pid}/{p.relative_to(folders[pid][0]).with_suffix('').as_posix()}"
                for pid, p, _ in items}
        splits = self.assign_splits(items, key=lambda it: keys[it[:2]], group=lambda it: it[0])
        for pid, path, group in items:
            key = keys[(pid, path)]
            if splits[key] != split:
                continue
            label, raw, _ = patients[pid]
            meta = {"patient_label": label, "group": group} if group else {"patient_label": label}
            sample = self.crop(split, path, label, raw, key, patient_id=pid, **meta)
            if sample is not None:
                yield sample

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        patients = [("AAA", "PML_RARA"), ("BAB", "NPM1"), ("CCC", "CBFB_MYH11"),
                    ("DDA", "RUNX1_RUNX1T1"), ("EBE", "control"), ("FAF", "control"),
                    ("GCG", "NPM1")]
        keys, groups = [], []
        for k, (pid, diag) in enumerate(patients):
            n = 2 if k % 3 == 0 else 1
            write_crops(root, [f"{diag}/{pid}/image_{i}.tif" for i in range(n)], size=(64, 64))
            keys += [f"{pid}/image_{i}" for i in range(n)]
            groups += [pid] * n
        diagnosis = {"PML_RARA": "PML::RARA", "CBFB_MYH11": "CBFB::MYH11",
                     "RUNX1_RUNX1T1": "RUNX1::RUNX1T1"}
        write_csv(root / TABLE_NAMES[0], ["patient_id", "diagnosis", "age", "sex"],
                  [[pid, diagnosis.get(d, d), 50 + i, "f" if i % 2 else "m"]
                   for i, (pid, d) in enumerate(patients)])
        return count_splits(assign_splits(keys, groups, seed=cls.split_seed), cls.splits)
