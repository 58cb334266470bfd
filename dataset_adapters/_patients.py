"""Patient bags of the patient-level sets (not an adapter itself): :class:`PatientBags`.

A mixin of :class:`dataset_adapters._classification.PatientTable` adapters (aml_hehr,
apl_aml). :meth:`PatientBags.bags` loads every split, groups the cells by ``patient_id``
(:func:`unihema.data.patients.bags_from_records`) and adds each patient's genetic findings:

* the alterations the diagnosis itself implies (``diagnosis_findings``: an AML-Hehr patient
  of class ``npm1`` carries NPM1; an APL patient PML::RARA), then
* those of a findings column of the patient table when there is one (``findings_columns``,
  values separated by ``;`` or ``,``).

``meta["findings_known"]`` says whether the findings are a complete answer for the patient
(``False``: none listed does not mean none present, e.g. a non-APL AML of APL-AML without a
findings column), ``meta["findings_source"]`` where they came from, ``meta["split"]`` the
patient's split (patient-aware: one per patient).
"""

from __future__ import annotations

from typing import ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple

from unihema.data import vocab
from unihema.data.formats import read_csv_table
from unihema.data.patients import PatientBag, bags_from_records, parse_findings


class PatientBags:
    """``bags()`` for a :class:`~dataset_adapters._classification.PatientTable` adapter."""

    #: accepted header names of an optional findings column of the patient table
    findings_columns: ClassVar[Tuple[str, ...]] = ("findings", "genetic findings", "genetics",
                                                   "mutations", "molecular findings")
    #: canonical diagnosis -> the alterations it implies (by definition of the class)
    diagnosis_findings: ClassVar[Mapping[str, Tuple[str, ...]]] = {}

    def read_findings(self) -> Optional[Dict[str, List[str]]]:
        """``patient id -> findings`` from the table's findings column, or ``None`` when the
        table has none. The patient column is the one :meth:`read_patients` uses."""
        path = self.table_path()  # type: ignore[attr-defined]
        rows = read_csv_table(path)
        header = [k for k in (rows[0] if rows else {}) if k != "_line"]
        norm = {vocab.normalize(h): h for h in header}

        def column(accepted: Sequence[str]) -> Optional[str]:
            return next((norm[vocab.normalize(a)] for a in accepted
                         if vocab.normalize(a) in norm), None)

        fcol = column(self.findings_columns)
        pcol = column(self.patient_columns)  # type: ignore[attr-defined]
        if fcol is None or pcol is None:
            return None
        return {str(r[pcol]): parse_findings(str(r[fcol])) for r in rows if r[pcol]}

    def bags(self) -> List[PatientBag]:
        """One bag per patient with images: its cells (every split), its diagnosis as the
        label, its findings (see the module docstring). Bags are in patient-id order."""
        records = [s for split in self.splits for s in self.load(split)]  # type: ignore
        bags = sorted(bags_from_records(records), key=lambda b: b.patient_id)
        table = self.read_findings()
        for bag in bags:
            implied = list(self.diagnosis_findings.get(bag.diagnosis or "", ()))
            listed = (table or {}).get(bag.patient_id, [])
            bag.findings = list(dict.fromkeys(implied + listed))
            sources = (["diagnosis"] if bag.diagnosis in self.diagnosis_findings else []) + \
                (["table"] if table is not None else [])
            bag.meta["findings_source"] = "+".join(sources) or "none"
            bag.meta["findings_known"] = bool(sources)
            bag.meta["split"] = bag.meta["splits"][0] if bag.meta.get("splits") else None
        return bags
