"""bccd, cbc and txl_pbc: VOC/YOLO fields; box rules; exact figures on the real BCCD."""

from __future__ import annotations

import pytest

from dataset_adapters.bccd import BCCD
from dataset_adapters.cbc import CBC
from dataset_adapters.txl_pbc import TXLPBC
from unihema.data.catalog import DataError
from unihema.data.check import check_dataset


def test_bccd_example_layout_and_conversion(tmp_path):
    assert BCCD.write_example(tmp_path) == {"train": 2, "val": 1, "test": 1}
    assert (tmp_path / "BCCD" / "ImageSets" / "Main" / "trainval.txt").is_file()
    for root in (tmp_path, tmp_path / "BCCD"):  # the clone or its BCCD/ folder
        (s, _) = BCCD(root).load("train")
        assert s.sample_id == "BloodImage_00001" and (s.width, s.height) == (128, 96)
    # the corner box (1, 1, 12, 10) in 1-based inclusive indices is (0, 0, 12, 10) in edges
    assert s.boxes[-1].tolist() == [0, 0, 12, 10] and s.box_labels[-1] == "red blood cell"
    assert set(s.box_labels) == {"red blood cell", "white blood cell", "platelet"}


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_bccd_bad_boxes_labels_and_splits(tmp_path):
    BCCD.write_example(tmp_path)
    ann = tmp_path / "BCCD" / "Annotations"
    _edit(ann / "BloodImage_00001.xml", "<xmin>1</xmin>", "<xmin>0</xmin>")  # 1 px past
    _edit(ann / "BloodImage_00002.xml", "<ymax>10</ymax>", "<ymax>140</ymax>")  # far outside
    _edit(ann / "BloodImage_00003.xml", "<name>WBC</name>", "<name>Neutrophil</name>")
    _edit(ann / "BloodImage_00005.xml", "<xmin>1</xmin><ymin>1</ymin>".replace("><", ">\n\t\t\t<"),
          "<xmin>12</xmin>\n\t\t\t<ymin>1</ymin>")  # single-column box, kept and noted
    report = check_dataset("bccd", tmp_path, progress=False)
    problems = [str(p) for p in report.problems]
    assert len(problems) == 3
    assert "BloodImage_00002.xml: object 4 'RBC': box [0.0, 0.0, 12.0, 140.0] lies outside" \
        in problems[0]
    assert "BloodImage_00003.xml: object 2 'Neutrophil': unknown label" in problems[1]
    assert problems[2] == f"{tmp_path}: split 'val' is empty: no sample loaded"  # its only one
    notes = [str(n) for n in report.notes]
    assert any("BloodImage_00001.xml: object 4 'RBC': box [-1.0" in n and "moved onto" in n
               for n in notes)
    assert any("BloodImage_00005.xml: object 4 'RBC' is a 1x10 px box" in n for n in notes)
    (s,) = BCCD(tmp_path).load("test")
    assert s.meta["tiny_boxes"] == [4]
    with pytest.raises(DataError, match="BloodImage_00002.xml: object 4"):
        BCCD(tmp_path).load("train")
    main = tmp_path / "BCCD" / "ImageSets" / "Main"
    (main / "trainval.txt").write_text("BloodImage_00001\n")
    with pytest.raises(DataError, match="trainval.txt: differs from train.txt \\+ val.txt"):
        BCCD(tmp_path).load("test")
    (main / "test.txt").unlink()
    with pytest.raises(DataError, match="test.txt is missing"):
        BCCD(tmp_path, on_error="skip").load("test")


def test_bccd_real_data(shared_datasets):
    root = shared_datasets / "BCCD"
    report = check_dataset("bccd", root, fast=True, progress=False)
    assert report.problems == []
    assert {s.split: s.summary["samples"] for s in report.splits} == \
        {"train": 205, "val": 87, "test": 72}
    boxes = {}
    for s in report.splits:
        for name, n in s.summary["boxes_per_class"].items():
            boxes[name] = boxes.get(name, 0) + n
    assert boxes == {"red blood cell": 4155, "white blood cell": 372, "platelet": 361}
    # the two single-point RBC boxes of the source are kept as 1x1 px boxes and noted
    assert sorted(n.file.rsplit("/", 1)[-1] for n in report.notes) == \
        ["BloodImage_00338.xml", "BloodImage_00343.xml"]


def test_cbc_example_and_missing_partner(tmp_path):
    assert CBC.write_example(tmp_path) == {"train": 2, "val": 1, "test": 1}
    (s,) = CBC(tmp_path).load("val")
    assert s.image_path.endswith("Validation/Images/BloodImage_00003.jpg")
    assert len(s.box_labels) == 4
    (tmp_path / "Testing" / "Annotations" / "BloodImage_00004.xml").unlink()
    report = check_dataset("cbc", tmp_path, progress=False)
    assert [str(p) for p in report.problems] == [
        f"{tmp_path / 'Testing/Images/BloodImage_00004.jpg'}: image has no annotation "
        f"{tmp_path / 'Testing/Annotations/BloodImage_00004.xml'}",
        f"{tmp_path}: split 'test' is empty: no sample loaded"]  # its only image


def test_txl_pbc_example_names_and_lines(tmp_path):
    assert TXLPBC.write_example(tmp_path) == {"train": 2, "val": 1, "test": 1}
    (s,) = TXLPBC(tmp_path).load("test")
    assert s.box_labels == ["white blood cell", "red blood cell", "red blood cell", "platelet"]
    base = tmp_path / "TXL_PBC"
    lab = base / "labels" / "train" / "train_0001.txt"
    lab.write_text(lab.read_text() + "7 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match=r"train_0001.txt:5: class 7 is not in the names"):
        TXLPBC(tmp_path).load("train")
    lab.write_text("0 0.5 0.5 0.1\n")
    with pytest.raises(DataError, match=r"train_0001.txt:1: expected 5 fields"):
        TXLPBC(tmp_path).load("train")
    (base / "labels" / "classes.txt").write_text("RBC\nWBC\nPlatelets\n")
    with pytest.raises(DataError, match="data.yaml: lists .* but .*classes.txt lists"):
        TXLPBC(tmp_path).load("val")
