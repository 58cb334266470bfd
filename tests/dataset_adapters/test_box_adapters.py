"""VOC, COCO, BBBC JSON and YOLO detection adapters: what they read and what they report."""

from __future__ import annotations

import json

import pytest

import dataset_adapters  # noqa: F401 - registers the adapters
from dataset_adapters import _examples as ex
from dataset_adapters.bbbc041 import BBBC041
from dataset_adapters.bio_net import BioNet
from dataset_adapters.iml_malaria import IMLMalaria
from dataset_adapters.m5_malaria import M5Malaria
from dataset_adapters.raabin_det import RaabinDet
from dataset_adapters.sickle_cell_uganda import SickleCellUganda
from unihema.data.catalog import DataError


def _all(adapter):
    return [s for split in type(adapter).splits for s in adapter.load(split)]


def test_m5_reads_domains_and_reports_bad_voc_files(tmp_path):
    M5Malaria.write_example(tmp_path)
    samples = {s.sample_id: s for s in _all(M5Malaria(tmp_path))}
    s = samples["HCM/1000x/train/0001"]
    assert s.meta["domain"] == "HCM/1000x" and s.split == "train"
    assert set(s.box_labels) <= set(M5Malaria.classes["detect"]) and len(s.boxes) == 3
    xml = tmp_path / "HCM/1000x/train/0001.xml"
    xml.write_text(xml.read_text().replace("<xmax>", "<xmax>9", 1))  # xmax > 900: outside
    (tmp_path / "LCM/400x/train/0002.jpg").unlink()
    val = tmp_path / "HCM/1000x/val/0003.xml"
    val.write_text(val.read_text().replace("<width>160", "<width>150"))
    with pytest.raises(DataError, match="0001.xml"):
        M5Malaria(tmp_path).load("train")
    adapter = M5Malaria(tmp_path, on_error="skip")
    assert [s.sample_id for s in _all(adapter)] == ["LCM/400x/test/0004"]
    reasons = {p.file.split(" ")[0].rsplit("/", 1)[-1]: p.reason for p in adapter.problems}
    assert "outside the 160x120 image" in reasons["0001.xml"]
    assert "no image found" in reasons["0002.xml"]
    assert "<size> says 150x120" in reasons["0003.xml"]


def test_raabin_det_unknown_category_and_size_mismatch(tmp_path):
    RaabinDet.write_example(tmp_path)
    path = tmp_path / "train" / "_annotations.coco.json"
    doc = json.loads(path.read_text())
    doc["categories"].append({"id": 9, "name": "RBC", "supercategory": "WBC-cells"})
    doc["annotations"][0]["category_id"] = 9  # a box of image 1
    doc["images"][0]["width"] = 99  # image 0 (no boxes)
    path.write_text(json.dumps(doc))
    adapter = RaabinDet(tmp_path, on_error="skip")
    assert adapter.load("train") == []
    reasons = [p.reason for p in adapter.problems]
    assert any("unknown label 'RBC'" in r for r in reasons)
    assert any("recorded as 99x120" in r for r in reasons)
    path.write_text("{\"images\": [")
    with pytest.raises(DataError, match=r"_annotations\.coco\.json:1: malformed JSON"):
        RaabinDet(tmp_path).load("train")


def test_bbbc041_official_split_and_shape_check(tmp_path):
    BBBC041.write_example(tmp_path)
    train = BBBC041(tmp_path).load("train")
    assert [len(s.boxes) for s in train] == [4, 4, 4]
    assert train[0].box_labels[1] == "white blood cell"  # "leukocyte"
    doc = json.loads((tmp_path / "test.json").read_text())
    doc[0]["image"]["shape"]["r"] = 200
    (tmp_path / "test.json").write_text(json.dumps(doc))
    adapter = BBBC041(tmp_path, on_error="skip")
    assert len(adapter.load("test")) == 1
    assert "shape says 160x200" in adapter.problems[0].reason


def test_iml_prefers_split_files_over_seeded_split(tmp_path):
    IMLMalaria.write_example(tmp_path)
    entries = json.loads((tmp_path / "annotations.json").read_text())
    ex.write_json(tmp_path / "train.json", entries[:6])
    ex.write_json(tmp_path / "test.json", entries[6:])
    adapter = IMLMalaria(tmp_path)
    assert [len(adapter.load(s)) for s in IMLMalaria.splits] == [6, 0, 4]


def test_sickle_yolo_release(tmp_path):
    (tmp_path / "classes.txt").write_text("sickle\nnormal\n")
    boxes = ex.layout_boxes(160, 120, 2, size=30)
    for i in range(10):
        ex.write_smear(tmp_path / "images" / f"s{i}.jpg", 160, 120, boxes, ["sickle", "rbc"])
        ex.write_yolo(tmp_path / "labels" / f"s{i}.txt",
                      [ex.yolo_row(0, boxes[0], 160, 120), ex.yolo_row(1, boxes[1], 160, 120)])
    samples = _all(SickleCellUganda(tmp_path))
    assert len(samples) == 10
    assert samples[0].box_labels == ["sickle cell", "red blood cell"]
    assert samples[0].boxes[0].tolist() == pytest.approx(list(boxes[0]), abs=1e-3)
    (tmp_path / "labels" / "s3.txt").write_text("2 0.5 0.5 0.1 0.1\n")
    adapter = SickleCellUganda(tmp_path, on_error="skip")
    assert len(_all(adapter)) == 9
    (p,) = adapter.problems
    assert p.line == 1 and "class index 2 but only 2 class names" in p.reason


def test_bio_net_unknown_crop_folder(tmp_path):
    BioNet.write_example(tmp_path)
    ex.write_crop(tmp_path / "classification" / "Blast" / "b.jpg", 32)
    adapter = BioNet(tmp_path, on_error="skip")
    crops = [s for s in _all(adapter) if s.label is not None]
    assert len(crops) == 10 and {s.meta["kind"] for s in crops} == {"crop"}
    (p,) = adapter.problems
    assert "unknown label 'Blast'" in p.reason
