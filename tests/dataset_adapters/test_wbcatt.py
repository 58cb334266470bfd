"""WBCAtt: attribute tables become morphology, QA and reports; bad rows are named by line."""

from __future__ import annotations

import shutil

import pytest

from dataset_adapters.wbcatt import ATTRIBUTE_COLUMNS, COLUMNS, WbcAtt
from unihema.data.text import language
from unihema.data.catalog import DataError
from unihema.data.vocab import ATTRIBUTES, check_attributes

ROW = ["BA_1.jpg", "Basophil", "Big", "round", "Unsegmented_Indented", "high", "densely", "no",
       "clear", "Purple Blue", "coarse", "purple", "yes"]


def _write(root, rows, split="train"):
    lines = [",".join(COLUMNS)] + [",".join(r) for r in rows]
    (root / f"pbc_attr_v1_{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_columns_are_the_attribute_schema():
    assert ATTRIBUTE_COLUMNS == tuple(ATTRIBUTES)


def test_example_rows_become_morphology_qa_and_report(tmp_path):
    counts = WbcAtt.write_example(tmp_path)
    adapter = WbcAtt(tmp_path)
    samples = adapter.load("train")
    assert len(samples) == counts["train"] == 5
    s = next(x for x in samples if x.label == "monocyte")
    assert check_attributes(s.attributes) == [] and len(s.attributes) == 11
    assert s.attributes["nucleus_shape"] == "unsegmented-indented"
    assert s.report == language.describe_cell("monocyte", s.attributes)
    assert s.qa[0].qtype == "type" and s.qa[0].answer == "monocyte"
    assert {q.answer for q in s.qa if q.qtype == "attribute"} >= {"frosted", "loosely"}
    assert len(s.qa) == 12 and s.tasks() == ["classify", "morphology", "mlm", "vqa"]


def test_values_tolerate_case_and_separators_and_paths_both_forms(tmp_path):
    WbcAtt.write_example(tmp_path)
    # a path relative to PBC_dataset_normal_DIB (without the folder) is found too
    src = next((tmp_path / "PBC_dataset_normal_DIB" / "basophil").glob("*.jpg"))
    shutil.copy(src, src.parent / "BA_1.jpg")
    _write(tmp_path, [ROW + ["basophil/BA_1.jpg"]])
    (s,) = WbcAtt(tmp_path).load("train")
    assert s.attributes["cell_size"] == "big"
    assert s.attributes["nucleus_shape"] == "unsegmented-indented"
    assert s.attributes["cytoplasm_colour"] == "purple blue"
    assert s.image_path.endswith("PBC_dataset_normal_DIB/basophil/BA_1.jpg")


def test_pbc_root_option(tmp_path):
    WbcAtt.write_example(tmp_path / "pbc")
    for split in ("train", "val", "test"):
        shutil.move(str(tmp_path / "pbc" / f"pbc_attr_v1_{split}.csv"), tmp_path)
    with pytest.raises(DataError, match="missing"):
        WbcAtt(tmp_path).load("train")
    assert len(WbcAtt(tmp_path, pbc_root=tmp_path / "pbc").load("train")) == 5


def test_bad_value_names_file_line_and_allowed_values(tmp_path):
    WbcAtt.write_example(tmp_path)
    bad = list(ROW)
    bad[ATTRIBUTE_COLUMNS.index("granule_colour") + 2] = "green"
    good_path = "PBC_dataset_normal_DIB/" + next(
        (tmp_path / "PBC_dataset_normal_DIB").glob("*/*.jpg")).relative_to(
        tmp_path / "PBC_dataset_normal_DIB").as_posix()
    _write(tmp_path, [ROW + [good_path], bad + [good_path], ["x.jpg", "Platelet"] + ROW[2:]
                      + [good_path]])
    with pytest.raises(DataError, match=r"pbc_attr_v1_train\.csv:3: granule_colour is 'green'"
                                        r".*nil, pink, purple, red"):
        WbcAtt(tmp_path).load("train")
    adapter = WbcAtt(tmp_path, on_error="skip")
    assert len(adapter.load("train")) == 1
    assert [(p.line, p.reason.split(";")[0]) for p in adapter.problems] == [
        (3, "granule_colour is 'green'"), (4, "unknown label 'Platelet'")]


def test_malformed_line_and_missing_column(tmp_path):
    WbcAtt.write_example(tmp_path)
    path = tmp_path / "pbc_attr_v1_val.csv"
    path.write_text(path.read_text() + "only,three,fields\n")
    with pytest.raises(DataError, match=r"pbc_attr_v1_val\.csv:4: expected 14 fields"):
        WbcAtt(tmp_path).load("val")
    adapter = WbcAtt(tmp_path, on_error="skip")
    assert adapter.load("val") == [] and "expected 14 fields" in str(adapter.problems[0])
    (tmp_path / "pbc_attr_v1_test.csv").write_text("img_name,label\nBA_1.jpg,Basophil\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['cell_size'"):
        WbcAtt(tmp_path).load("test")
