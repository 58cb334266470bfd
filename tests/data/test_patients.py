"""Patient bags: the cohort file, findings vectors, patient-level folds, grouping records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from unihema.data.catalog import DataError
from unihema.data.patients import (FindingsVocab, PatientBag, bags_from_records, draw_folds,
                                   findings_vector, load_cohort, parse_findings, patient_folds,
                                   write_cohort)
from unihema.data.sample import UnifiedSample

DIAGNOSES = ["healthy", "pml::rara", "npm1", "cbfb::myh11"]


def _bags(n: int = 20, cells: int = 3):
    out = []
    for i in range(n):
        d = DIAGNOSES[i % len(DIAGNOSES)]
        findings = [] if d == "healthy" else [d.upper()] + (["FLT3-ITD"] if i % 3 == 0 else [])
        out.append(PatientBag(f"P{i:03d}", [d], findings,
                              [f"cells/P{i:03d}/{j}.png" for j in range(cells)],
                              ["myeloblast"] * cells, {"age": 40 + i}))
    return out


def test_findings_text_and_vector():
    bag = PatientBag("A", ["pml::rara"], ["PML::RARA", "FLT3-ITD"])
    assert bag.findings_text() == "PML::RARA; FLT3-ITD"
    assert PatientBag("B", ["healthy"]).findings_text() == "no alteration found"
    vocab = FindingsVocab.from_bags([bag, PatientBag("C", [], ["npm1", "FLT3-ITD"])])
    assert vocab.names == ("FLT3-ITD", "npm1", "PML::RARA")  # most frequent first
    v = findings_vector(["NPM1", "flt3-itd"], vocab)  # case-insensitive
    assert v.dtype == np.float32 and v.shape == (3,) and v.sum() == 2
    assert v[vocab.index("FLT3-ITD")] == 1 and v[vocab.index("PML::RARA")] == 0
    assert findings_vector([], ["A", "B"]).tolist() == [0, 0]
    with pytest.raises(KeyError, match="'KIT' is not in the vocabulary"):
        findings_vector(["KIT"], vocab)
    assert findings_vector(["KIT", "NPM1"], vocab, unknown="ignore").sum() == 1
    with pytest.raises(ValueError, match="twice"):
        FindingsVocab(("NPM1", "npm1"))


def test_parse_findings():
    assert parse_findings("PML::RARA; FLT3-ITD,  KIT ") == ["PML::RARA", "FLT3-ITD", "KIT"]
    assert parse_findings("none") == parse_findings("") == parse_findings(None) == []
    assert parse_findings(["NPM1", "NPM1"]) == ["NPM1"]


def test_cohort_round_trip(tmp_path):
    bags = _bags(6)
    bags[0].cells.append(str(tmp_path / "elsewhere.png"))  # absolute stays absolute
    bags[0].cell_types.append(None)
    path = write_cohort(tmp_path, bags, "toy")
    assert path == tmp_path / "cohort.jsonl" and len(path.read_text().splitlines()) == 6
    first = json.loads(path.read_text().splitlines()[0])
    assert first["cells"][0] == "cells/P000/0.png"
    assert first["cells"][-1] == "elsewhere.png"  # under the root: written relative
    summary = json.loads((tmp_path / "cohort.json").read_text())
    assert summary["name"] == "toy" and summary["patients"] == 6 and summary["cells"] == 19
    back = load_cohort(tmp_path)
    assert [b.patient_id for b in back] == [b.patient_id for b in bags]
    assert back[1].cells[0] == str(tmp_path.resolve() / "cells/P001/0.png")
    assert back[1].labels == ["pml::rara"] and back[1].findings == ["PML::RARA"]
    assert back[0].cell_types[-1] is None and back[0].meta == {"age": 40}
    assert load_cohort(path)[2].kind == "crop"


def test_write_rejects_bad_bags(tmp_path):
    with pytest.raises(ValueError, match="patient 'X': labels: 'leukaemia type 9' is not"):
        write_cohort(tmp_path, [PatientBag("X", ["leukaemia type 9"])], "bad")
    with pytest.raises(ValueError, match="cell_types: 1 entries for 2 cells"):
        write_cohort(tmp_path, [PatientBag("X", [], [], ["a", "b"], [None])], "bad")
    with pytest.raises(ValueError, match="'X' appears twice"):
        write_cohort(tmp_path, [PatientBag("X"), PatientBag("X")], "bad")


@pytest.mark.parametrize("line, message", [
    ('{"patient_id": "A", "labels": ["healthy"]', r"cohort\.jsonl:2: not JSON"),
    ('{"labels": []}', r"cohort\.jsonl:2: patient_id: missing"),
    ('{"patient_id": "B", "cells": ["a.png"], "cell_types": []}',
     r"cohort\.jsonl:2: cell_types: 0 entries for 1 cells"),
    ('{"patient_id": "B", "labels": "healthy"}', r"cohort\.jsonl:2: labels: expected a list"),
    ('{"patient_id": "B", "colour": 1}', r"cohort\.jsonl:2: unknown field\(s\) \['colour'\]"),
    ('{"patient_id": "A"}', r"cohort\.jsonl:2: patient_id: 'A' is listed twice \(first at "
                            r"line 1\)"),
])
def test_load_names_file_line_and_field(tmp_path, line, message):
    (tmp_path / "cohort.jsonl").write_text('{"patient_id": "A"}\n' + line + "\n")
    with pytest.raises(DataError, match=message):
        load_cohort(tmp_path)


def test_load_checks_files_when_asked(tmp_path):
    write_cohort(tmp_path, _bags(2, cells=1), "toy")
    assert len(load_cohort(tmp_path)) == 2
    with pytest.raises(DataError, match=r"cohort\.jsonl:1: cells\[0\]: no image at"):
        load_cohort(tmp_path, check_files=True)
    with pytest.raises(DataError, match="no cohort file"):
        load_cohort(tmp_path / "nowhere")


def test_folds_are_patient_level_stratified_and_deterministic():
    bags = _bags(43)
    folds = draw_folds(bags, k=5, seed=0)
    ids = [p for f in folds for p in f]
    assert sorted(ids) == sorted(b.patient_id for b in bags) and len(ids) == len(set(ids))
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    diag = {b.patient_id: b.diagnosis for b in bags}
    for d in DIAGNOSES:  # each diagnosis spread as evenly as its count allows
        per_fold = [sum(diag[p] == d for p in f) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1
    assert draw_folds(list(reversed(bags)), k=5, seed=0) == folds  # order independent
    assert draw_folds(bags, k=5, seed=1) != folds
    with pytest.raises(ValueError, match="3 patients cannot fill 5 folds"):
        draw_folds(bags[:3])


def test_fold_file_written_then_reused_and_validated(tmp_path):
    bags = _bags(12)
    path = tmp_path / "folds.json"
    folds = patient_folds(bags, k=3, seed=0, path=path)
    assert json.loads(path.read_text())["folds"] == folds
    doc = json.loads(path.read_text())
    doc["folds"] = [doc["folds"][1], doc["folds"][0], doc["folds"][2]]  # a hand-edited file
    path.write_text(json.dumps(doc))
    assert patient_folds(bags, k=3, seed=5, path=path) == doc["folds"]  # read, not redrawn
    with pytest.raises(DataError, match=r"folds\.json: folds: holds 3 folds, 5 were asked"):
        patient_folds(bags, k=5, path=path)
    with pytest.raises(DataError, match=r"1 missing from the file, e\.g\. \['P012'\]"):
        patient_folds(_bags(13), k=3, path=path)
    doc["folds"][0].append(doc["folds"][1][0])
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"patient 'P\d+' is in folds 0 and 1"):
        patient_folds(bags, k=3, path=path)


def _record(pid, i, label, diag, **meta):
    return UnifiedSample(dataset="toy", split="train" if i % 2 else "test", sample_id=f"{pid}/{i}",
                         image_path=f"/data/{pid}/{i}.png", width=8, height=8, patient_id=pid,
                         label=label, meta={"patient_label": diag, "kind": "crop", **meta})


def test_bags_from_records():
    recs = [_record("A", 0, "myeloblast", "pml::rara", group="g1", findings="PML::RARA"),
            _record("B", 0, "npm1", "npm1", group="g2"),  # weak label: not a cell type
            _record("A", 1, "promyelocyte", "pml::rara", group="g1", findings=["FLT3-ITD"])]
    bags = bags_from_records(recs)
    assert [b.patient_id for b in bags] == ["A", "B"]
    a, b = bags
    assert a.labels == ["pml::rara"] and a.findings == ["PML::RARA", "FLT3-ITD"]
    assert a.cells == ["/data/A/0.png", "/data/A/1.png"]
    assert a.cell_types == ["myeloblast", "promyelocyte"] and b.cell_types == [None]
    assert a.meta["group"] == "g1" and sorted(a.meta["splits"]) == ["test", "train"]
    with pytest.raises(DataError, match="differs from patient 'A''s earlier 'pml::rara'"):
        bags_from_records(recs + [_record("A", 2, None, "npm1")])
    with pytest.raises(DataError, match="record toy/x/0: no patient_id"):
        bags_from_records([UnifiedSample(dataset="toy", split="train", sample_id="x/0",
                                         image_path="/x.png", width=8, height=8)])
