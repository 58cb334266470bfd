"""aml_hehr and apl_aml: patient tables, per-patient folders, patient-aware splits."""

from __future__ import annotations

import pytest

from dataset_adapters.aml_hehr import AmlHehr
from dataset_adapters.apl_aml import AplAml
from unihema.data.catalog import DataError


def _all(adapter):
    return [s for split in adapter.splits for s in adapter.load(split)]


@pytest.mark.parametrize("cls", [AmlHehr, AplAml])
def test_patient_ids_and_labels(tmp_path, cls):
    counts = cls.write_example(tmp_path)
    adapter = cls(tmp_path)
    samples = _all(adapter)
    assert len(samples) == sum(counts.values()) and adapter.problems == []
    by_patient = {}
    for s in samples:
        assert s.patient_id and s.meta["patient_label"]
        by_patient.setdefault(s.patient_id, set()).add(s.split)
    assert all(len(splits) == 1 for splits in by_patient.values())  # no patient in two splits


def test_aml_hehr_cells_carry_the_patient_diagnosis(tmp_path):
    AmlHehr.write_example(tmp_path)
    samples = {s.patient_id: s for s in _all(AmlHehr(tmp_path))}
    assert samples["AAA"].label == "pml::rara" and samples["EBE"].label == "healthy"
    assert samples["DDA"].meta["group"] == "RUNX1_RUNX1T1"


def test_apl_aml_cells_keep_their_type(tmp_path):
    AplAml.write_example(tmp_path)
    samples = _all(AplAml(tmp_path))
    blasts = [s for s in samples if s.meta["raw_label"] == "Blast, no lineage spec"]
    assert blasts and all(s.label == "blast" for s in blasts)
    apl = {s.meta["patient_label"] for s in samples if s.patient_id.startswith("APL")}
    assert apl == {"acute promyelocytic leukemia"}


def test_bad_table_rows_and_stray_folders(tmp_path):
    AmlHehr.write_example(tmp_path)
    table = tmp_path / "metadata.csv"
    table.write_text(table.read_text() + "GGG,CML,60,m\nAAA,NPM1,1,f\n")
    (tmp_path / "control" / "ZZZ").mkdir()
    with pytest.raises(DataError, match=r"metadata\.csv:9: unknown diagnosis 'CML'"):
        AmlHehr(tmp_path).load("train")
    adapter = AmlHehr(tmp_path, on_error="skip")
    assert len(_all(adapter)) == 10
    reasons = {str(p) for p in adapter.problems}
    assert any("metadata.csv:9: unknown diagnosis 'CML'" in r for r in reasons)
    assert any("metadata.csv:10: patient 'AAA' is listed twice (first at line 2)" in r
               for r in reasons)
    assert any("folder 'ZZZ' is not a patient of metadata.csv" in r for r in reasons)


def test_missing_column_and_unknown_cell_type(tmp_path):
    AplAml.write_example(tmp_path)
    (tmp_path / "APL_1" / "Dragon cell").mkdir()
    (tmp_path / "APL_1" / "Promyelocyte" / "1.jpg").rename(tmp_path / "APL_1" / "Dragon cell"
                                                           / "1.jpg")
    with pytest.raises(DataError, match=r"APL_1/Dragon cell.*unknown cell-type folder "
                                        r"'Dragon cell' \(1 images not read\)"):
        AplAml(tmp_path).load("train")
    (tmp_path / "master.csv").write_text("Patient,Age\nAPL_1,3\n")
    with pytest.raises(DataError, match=r"master\.csv:1: no diagnosis column; expected one of "
                                        r"\['Diagnosis'.*columns found: \['Patient', 'Age'\]"):
        AplAml(tmp_path).load("train")


def test_aml_hehr_patient_bags(tmp_path):
    AmlHehr.write_example(tmp_path)
    bags = {b.patient_id: b for b in AmlHehr(tmp_path).bags()}
    assert sorted(bags) == ["AAA", "BAB", "CCC", "DDA", "EBE", "FAF", "GCG"]
    assert {p: len(b.cells) for p, b in bags.items()} == {
        "AAA": 2, "BAB": 1, "CCC": 1, "DDA": 2, "EBE": 1, "FAF": 1, "GCG": 2}
    assert bags["AAA"].labels == ["pml::rara"] and bags["AAA"].findings == ["PML::RARA"]
    assert bags["DDA"].findings_text() == "RUNX1::RUNX1T1"
    assert bags["EBE"].labels == ["healthy"] and bags["EBE"].findings == []
    assert bags["EBE"].meta["findings_known"] and bags["EBE"].meta["group"] == "control"
    assert all(t is None for b in bags.values() for t in b.cell_types)  # weak labels only
    assert all(c.endswith(".tif") and (tmp_path / c).is_file() for c in bags["AAA"].cells)
    assert bags["GCG"].meta["split"] in ("train", "val", "test")
    assert [b.validate() for b in bags.values()] == [[]] * 7


def test_aml_hehr_findings_column(tmp_path):
    AmlHehr.write_example(tmp_path)
    table = tmp_path / "metadata.csv"
    lines = table.read_text().splitlines()
    extra = {"AAA": "FLT3-ITD", "BAB": "NPM1; DNMT3A, FLT3-ITD"}
    table.write_text("\n".join([lines[0] + ",Mutations"] + [
        f"{line},\"{extra.get(line.split(',')[0], '')}\"" for line in lines[1:]]) + "\n")
    bags = {b.patient_id: b for b in AmlHehr(tmp_path).bags()}
    assert bags["AAA"].findings == ["PML::RARA", "FLT3-ITD"]
    assert bags["BAB"].findings == ["NPM1", "DNMT3A", "FLT3-ITD"]  # implied one not repeated
    assert bags["BAB"].meta["findings_source"] == "diagnosis+table"


def test_apl_aml_patient_bags(tmp_path):
    from unihema.data.patients import dataset_bags

    AplAml.write_example(tmp_path)
    bags = {b.patient_id: b for b in dataset_bags("apl_aml", tmp_path)}
    assert len(bags) == 7 and all(len(b.cells) == 2 for b in bags.values())
    apl, aml = bags["APL_1"], bags["AML_2"]
    assert apl.labels == ["acute promyelocytic leukemia"] and apl.findings == ["PML::RARA"]
    assert aml.labels == ["acute myeloid leukemia"] and aml.findings == []
    assert apl.meta["findings_known"] and not aml.meta["findings_known"]  # unknown, not none
    assert apl.cell_types == ["blast", "promyelocyte"]  # the CellaVision types are kept
    table = tmp_path / "master.csv"
    rows = table.read_text().splitlines()
    table.write_text("\n".join([rows[0] + ",Genetics"] + [r + ",NPM1" for r in rows[1:]]) + "\n")
    aml = {b.patient_id: b for b in AplAml(tmp_path).bags()}["AML_2"]
    assert aml.findings == ["NPM1"] and aml.meta["findings_known"]
