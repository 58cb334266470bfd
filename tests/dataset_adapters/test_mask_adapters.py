"""Adapters that derive masks or boxes: MP-IDB (JPEG masks), SegPC-2021 (per-instance masks),
bbbc041_seg (Supervisely objects), and the mirrored image/mask trees."""

from __future__ import annotations

import numpy as np
import pytest

import dataset_adapters  # noqa: F401 - registers the adapters
from dataset_adapters import _examples as ex
from dataset_adapters.anerbc import AneRBC, parent_of
from dataset_adapters.bbbc041_seg import BBBC041Seg
from dataset_adapters.krd_wbc import KrdWbc
from dataset_adapters.mp_idb import MpIdb, stages_of
from dataset_adapters.segpc_2021 import SegPC2021
from unihema.data import io
from unihema.data.catalog import DataError
from unihema.data.check import check_dataset


def _all(adapter):
    return [s for split in type(adapter).splits for s in adapter.load(split)]


def test_mp_idb_boxes_from_mask_components(tmp_path):
    MpIdb.write_example(tmp_path)
    samples = {s.sample_id: s for s in _all(MpIdb(tmp_path))}
    s = samples["Vivax/1305121331-0002-R_T"]
    assert s.label == "plasmodium vivax" and s.box_labels == ["plasmodium vivax"] * 2
    assert s.meta["stages"] == ["ring form", "trophozoite"]
    mask = io.read_mask(s.mask_path, s.mask_values, ["background", "malaria parasite"])
    assert set(np.unique(mask)) == {0, 1}
    for x0, y0, x1, y1 in s.boxes.astype(int).tolist():  # every box holds parasite pixels
        assert mask[y0:y1, x0:x1].any()
    assert stages_of("1305121398-0001-R") == ["ring form"] and stages_of("img-07") == []


def test_mp_idb_missing_or_mis_sized_mask(tmp_path):
    MpIdb.write_example(tmp_path)
    gts = sorted((tmp_path / "Ovale" / "gt").iterdir())
    gts[0].unlink()
    ex.save_image(np.zeros((10, 10, 3), np.uint8), gts[1])
    with pytest.raises(DataError, match="Ovale"):
        _all(MpIdb(tmp_path))
    adapter = MpIdb(tmp_path, on_error="skip")
    assert len(_all(adapter)) == 10  # 12 images, 2 left out
    reasons = sorted(p.reason for p in adapter.problems)
    assert "mask is 10x10, image is 160x120" in reasons[0]
    assert reasons[1].startswith("no ground-truth mask")


def test_segpc_instances_merge_nucleus_over_cytoplasm(tmp_path):
    SegPC2021.write_example(tmp_path)
    (s, *_) = SegPC2021(tmp_path).load("train")
    assert s.meta["instances"] == 2
    mask = io.read_mask(s.mask_path, s.mask_values, ["background", "cytoplasm", "nucleus"])
    inst = io.read_mask(s.meta["instance_masks"][0], {0: "b", 20: "c", 40: "n"}, "bcn")
    assert (mask[inst == 2] == 2).all() and (mask[inst == 1] == 1).all()
    assert check_dataset("segpc_2021", tmp_path, progress=False).ok


def test_segpc_bad_instance_value_and_orphan_image(tmp_path):
    SegPC2021.write_example(tmp_path)
    y = tmp_path / "train" / "y"
    bad = y / "100_1.bmp"
    ex.save_image(ex.ellipse_mask(120, 160, [(10, 10, 50, 50)], [30]), bad)
    for p in y.glob("101_*.bmp"):
        p.unlink()
    with pytest.raises(DataError, match=r"100_1\.bmp.*value 30"):
        SegPC2021(tmp_path).load("train")
    adapter = SegPC2021(tmp_path, on_error="skip")
    assert [s.sample_id for s in adapter.load("train")] == ["102"]
    files = sorted(p.file.rsplit("/", 1)[-1] for p in adapter.problems)
    assert files == ["100_1.bmp", "101.bmp"]


def test_bbbc041_seg_paints_bitmaps_and_polygons(tmp_path):
    BBBC041Seg.write_example(tmp_path)
    (s, *_) = BBBC041Seg(tmp_path).load("train")
    mask = io.read_mask(s.mask_path, s.mask_values, list(BBBC041Seg.classes["segment"]))
    assert set(np.unique(mask)) == {0, 1, 2} and s.meta["objects"] == 3
    assert s.sample_id.startswith("train/") and "/ann/" not in s.sample_id


def test_bbbc041_seg_unknown_class_and_bad_bitmap(tmp_path):
    import json

    BBBC041Seg.write_example(tmp_path)
    anns = sorted((tmp_path / "train" / "ann").glob("*.json"))
    doc = json.loads(anns[0].read_text())
    doc["objects"][0]["classTitle"] = "platelet"
    anns[0].write_text(json.dumps(doc))
    doc = json.loads(anns[1].read_text())
    doc["objects"][1]["bitmap"]["data"] = "not base64!"
    anns[1].write_text(json.dumps(doc))
    adapter = BBBC041Seg(tmp_path, on_error="skip")
    assert adapter.load("train") == []
    by_file = {p.file: p.reason for p in adapter.problems}
    assert "unknown label 'platelet'" in by_file[str(anns[0])]
    assert "objects[1].bitmap.data" in by_file[str(anns[1])]


def test_mirrored_pairs_report_missing_masks_and_unknown_folders(tmp_path):
    KrdWbc.write_example(tmp_path)
    (tmp_path / "masks" / "Basophil" / "BA_001.png").unlink()
    ex.write_crop(tmp_path / "images" / "Myelocyte" / "MY_001.jpg", 32)
    ex.write_mask(tmp_path / "masks" / "Myelocyte" / "MY_001.png", np.zeros((32, 32), np.uint8))
    adapter = KrdWbc(tmp_path, on_error="skip")
    assert len(_all(adapter)) == 9
    reasons = [p.reason for p in adapter.problems]
    assert any(r.startswith("no mask BA_001") for r in reasons)
    assert any("unknown label 'Myelocyte'" in r for r in reasons)


def test_anerbc_sub_images_follow_their_parent(tmp_path):
    assert parent_of("AneRBC-II", "012_a_7") == "012_a" and parent_of("AneRBC-I", "012_a") \
        == "012_a"
    AneRBC.write_example(tmp_path)
    samples = _all(AneRBC(tmp_path))
    split_of = {}
    for s in samples:
        assert split_of.setdefault(s.meta["source_image"], s.split) == s.split
    assert {s.label for s in samples} == {"anemia", "healthy"}
