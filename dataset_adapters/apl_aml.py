"""APL vs AML (Sidhom et al. 2021): 25,915 cells of 106 leukemia patients, typed by CellaVision."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Tuple

from dataset_adapters._classification import PatientTable, classes_of, write_crops
from dataset_adapters._patients import PatientBags
from dataset_adapters._splits import assign_splits, count_splits
from dataset_adapters._examples import write_csv
from unihema.data.catalog import register_adapter
from unihema.data.formats import IMAGE_EXTENSIONS, scan_class_folders
from unihema.data.sample import UnifiedSample

#: cell-type folder (CellaVision category) -> canonical term
LABEL_MAP: Dict[str, str] = {
    "Blast, no lineage spec": "blast",
    "Blast": "blast",
    "Myeloblast": "myeloblast",
    "Promyelocyte": "promyelocyte",
    "Abnormal promyelocyte": "abnormal promyelocyte",
    "Promyelocyte, abnormal": "abnormal promyelocyte",
    "Myelocyte": "myelocyte",
    "Metamyelocyte": "metamyelocyte",
    "Neutrophil": "neutrophil",
    "Band neutrophil": "band neutrophil",
    "Neutrophil, band": "band neutrophil",
    "Segmented neutrophil": "segmented neutrophil",
    "Neutrophil, segmented": "segmented neutrophil",
    "Lymphocyte": "lymphocyte",
    "Variant lymphocyte": "atypical lymphocyte",
    "Lymphocyte, variant": "atypical lymphocyte",
    "Reactive lymphocyte": "atypical lymphocyte",
    "Large granular lymphocyte": "large granular lymphocyte",
    "Prolymphocyte": "prolymphocyte",
    "Monocyte": "monocyte",
    "Promonocyte": "promonocyte",
    "Eosinophil": "eosinophil",
    "Basophil": "basophil",
    "Plasma cell": "plasma cell",
    "Hairy cell": "hairy cell",
    "Smudge cell": "smudge cell",
    "Erythroblast": "erythroblast",
    "Giant platelet": "giant platelet",
    "Platelet clump": "platelet clump",
    "Artefact": "artefact",
    "Artifact": "artefact",
    "Not identified": "unidentified cell",
    "Unidentified": "unidentified cell",
}
#: patient diagnosis -> canonical term
DIAGNOSIS_MAP: Dict[str, str] = {"APL": "acute promyelocytic leukemia",
                                 "AML": "acute myeloid leukemia"}
TABLE_NAMES = ("master.csv",)
#: APL is diagnosed by its PML::RARA fusion; a non-APL AML implies no named alteration
DIAGNOSIS_FINDINGS: Dict[str, Tuple[str, ...]] = {"acute promyelocytic leukemia": ("PML::RARA",)}


@register_adapter("apl_aml")
class AplAml(PatientBags, PatientTable):
    """APL vs AML: JPEG cell crops from CellaVision, per patient and per cell type.

    <root>/
      master.csv                          one row per patient: Patient_ID, Diagnosis (APL or
                                          AML), other columns ignored (or the only *.csv, or
                                          ``AplAml(root, table="x.csv")``)
      [All/]<Patient_ID>/<cell type>/*.jpg
                                          cell type: the CellaVision category of the cell
                                          ("Blast, no lineage spec", "Promyelocyte",
                                          "Neutrophil", ... see LABEL_MAP)

    Each cell is a classification sample: ``label`` is its cell type, ``patient_id`` is set and
    the patient's diagnosis (acute promyelocytic / acute myeloid leukemia) is in
    ``meta["patient_label"]``. The sample contract has no patient-level task, so the diagnosis
    is not a training target here; patient-level prediction groups cells by ``patient_id``.
    ``bags()`` gives one :class:`~unihema.data.patients.PatientBag` per patient (all splits):
    label the diagnosis, the cells with their types, findings PML::RARA for APL (the fusion
    that defines it) plus those of an optional findings column (``findings`` / ``genetics`` /
    ``mutations``); without that column a non-APL patient's findings are unknown
    (``meta["findings_known"]`` is false).
    Unknown cell-type folders and images outside a cell-type folder are reported, as are
    folders not in the table and listed patients without a folder. No official split is read:
    ``unihema.data.splits.seeded_split`` (70/10/20, seed 0) grouped by patient. The layout is
    taken from the paper's code release and the catalogue only; it was not seen.
    """

    splits = ("train", "val", "test")
    label_map = LABEL_MAP
    diagnosis_map = DIAGNOSIS_MAP
    table_names = TABLE_NAMES
    patient_columns = ("Patient_ID", "patient", "patient id", "id")
    diagnosis_columns = ("Diagnosis", "label", "class")
    diagnosis_findings = DIAGNOSIS_FINDINGS
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "see source (Kaggle dataset terms; cite the paper)"
    citation = ("Sidhom J-W, Siddarthan IJ, Lai B-S, Luo A, Hambley BC, Bynum J, Duffield AS, "
                "Streiff MB, Moliterno AR, Imus P, Gocke CB, Gondek LP, DeZern AE, Baras AS, "
                "Kickler T, Levis MJ, Shenderov E. Deep learning for diagnosis of acute "
                "promyelocytic leukemia via recognition of genomically imprinted morphologic "
                "features. npj Precision Oncology 5:38, 2021. doi:10.1038/s41698-021-00179-y")
    url = "https://www.kaggle.com/datasets/eugeneshenderov/acute-promyelocytic-leukemia-apl"
    size = "25,915 images, 106 patients"
    access = ("Kaggle dataset eugeneshenderov/acute-promyelocytic-leukemia-apl (Kaggle login); "
              "unzip into the root")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        patients = self.read_patients()
        items = []
        for pid, (folder, group) in sorted(self.patient_folders(patients).items()):
            skipped: List[Path] = []
            found = scan_class_folders(folder, skipped=skipped)
            for path in skipped:
                if path.suffix.lower() in IMAGE_EXTENSIONS:
                    self.report(path, "image lies outside a cell-type folder (type unknown)")
            unknown: Dict[str, int] = {}
            for path, raw in found:
                label = self.label_of(raw)
                if label is None:
                    unknown[raw] = unknown.get(raw, 0) + 1
                else:
                    key = f"{pid}/{path.relative_to(folder).with_suffix('').as_posix()}"
                    items.append((key, pid, path, label, raw, group))
            for raw, n in sorted(unknown.items()):
                self.unknown_label(folder / raw, raw, "cell-type folder",
                                   extra=f" ({n} images not read)")
        splits = self.assign_splits(items, key=lambda it: it[0], group=lambda it: it[1])
        for key, pid, path, label, raw, group in items:
            if splits[key] != split:
                continue
            diagnosis = patients[pid][0]
            meta = {"patient_label": diagnosis, **({"group": group} if group else {})}
            sample = self.crop(split, path, label, raw, key, patient_id=pid, **meta)
            if sample is not None:
                yield sample

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        patients = [("APL_1", "APL"), ("APL_2", "APL"), ("APL_3", "APL"), ("AML_1", "AML"),
                    ("AML_2", "AML"), ("AML_3", "AML"), ("AML_4", "AML")]
        types = ["Blast, no lineage spec", "Promyelocyte", "Neutrophil", "Lymphocyte"]
        keys, groups = [], []
        for k, (pid, _) in enumerate(patients):
            for j in range(2):
                t = types[(k + j) % len(types)]
                write_crops(root, [f"{pid}/{t}/{j}.jpg"], size=(64, 64))
                keys.append(f"{pid}/{t}/{j}")
                groups.append(pid)
        write_csv(root / TABLE_NAMES[0], ["Patient_ID", "Diagnosis", "Age", "Gender"],
                  [[pid, d, 40 + i, "F"] for i, (pid, d) in enumerate(patients)])
        return count_splits(assign_splits(keys, groups, seed=cls.split_seed), cls.splits)
