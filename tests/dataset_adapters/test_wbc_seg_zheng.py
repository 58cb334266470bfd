"""wbc_seg_zheng: masks, CSV labels, stray mask values, seeded split; exact real figures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dataset_adapters.wbc_seg_zheng import MASK_VALUES, WBCSegZheng, nearest_documented
from unihema.data import io
from unihema.data.catalog import DataError
from unihema.data.check import check_dataset

STRAY = {"034.png", "035.png", "047.png", "050.png", "076.png"}


def test_nearest_documented():
    assert [nearest_documented(v) for v in (7, 50, 64, 100, 191, 192, 250)] == \
        [0, 0, 0, 128, 128, 255, 255]


def test_example_and_stray_values(tmp_path):
    expected = WBCSegZheng.write_example(tmp_path)
    assert expected == {"train": 6, "val": 1, "test": 2}
    adapter = WBCSegZheng(tmp_path)
    samples = [s for split in ("train", "val", "test") for s in adapter.load(split)]
    assert sorted(s.sample_id for s in samples)[:2] == ["d1_001", "d1_002"]
    (stray,) = [s for s in samples if "stray_mask_values" in s.meta]
    assert stray.sample_id == "d2_002" and stray.meta["stray_mask_values"] == {7: [1, 0]}
    assert stray.mask_values == {**MASK_VALUES, 7: "background"}
    mask = io.read_mask(stray.mask_path, stray.mask_values, ["background", "cytoplasm",
                                                              "nucleus"])
    assert set(np.unique(mask)) == {0, 1, 2}
    assert [str(n).endswith("read as 0 (background), the nearest documented value")
            for n in adapter.notes] == [True]
    assert {s.label for s in samples} <= set(WBCSegZheng.classes["classify"])
    # deterministic: the same ids land in the same split on every load
    assert [s.sample_id for s in WBCSegZheng(tmp_path).load("test")] == \
        [s.sample_id for s in adapter.load("test")]


def test_bad_csv_and_missing_files(tmp_path):
    WBCSegZheng.write_example(tmp_path)
    csv1 = tmp_path / "Class Labels of Dataset 1.csv"
    csv1.write_bytes(csv1.read_bytes().replace(b"\r\n3,4\r\n", b"\r\n3,9\r\n"))
    (tmp_path / "Dataset 1" / "005.png").unlink()
    report = check_dataset("wbc_seg_zheng", tmp_path, progress=False)
    problems = sorted(str(p) for p in report.problems)
    assert len(problems) == 2
    assert problems[0].endswith("Dataset 1.csv:4: class code '9' is not one of 1, 2, 3, 4, 5 "
                                "({'1': 'neutrophil', '2': 'lymphocyte', '3': 'monocyte', "
                                "'4': 'eosinophil', '5': 'basophil'})")
    assert problems[1].endswith("Dataset 1/005.bmp: mask 005.png is missing")
    csv1.write_text("id,label\n1,2\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['image ID'\]"):
        WBCSegZheng(tmp_path).load("train")


def test_real_data(shared_datasets):
    root = shared_datasets / "WBC-Seg-Zheng"
    report = check_dataset("wbc_seg_zheng", root, fast=True, progress=False)
    assert report.problems == []
    assert {s.split: s.summary["samples"] for s in report.splits} == \
        {"train": 280, "val": 40, "test": 80}
    adapter = WBCSegZheng(root)
    samples = [s for split in adapter.splits for s in adapter.load(split)]
    subsets = {}
    for s in samples:
        subsets[s.meta["subset"]] = subsets.get(s.meta["subset"], 0) + 1
    assert subsets == {"Dataset 1": 300, "Dataset 2": 100}
    assert {s.label for s in samples} == {"neutrophil", "lymphocyte", "monocyte", "eosinophil",
                                          "basophil"}
    assert all(set(s.mask_values.values()) == {"background", "cytoplasm", "nucleus"}
               for s in samples)
    with_stray = {s.mask_path.rsplit("/", 1)[-1] for s in samples
                  if "stray_mask_values" in s.meta}
    assert with_stray == STRAY and all("Dataset 2" in s.mask_path for s in samples
                                       if "stray_mask_values" in s.meta)
    documented = {0, 128, 255}
    clean = [s for s in samples if "stray_mask_values" not in s.meta]
    assert len(clean) == 395
    for s in clean[::40]:  # documented values only (spot check; check_dataset read them all)
        assert set(np.unique(np.asarray(Image.open(s.mask_path)))) <= documented
    assert {7: [179, 0]} == next(s.meta["stray_mask_values"] for s in samples
                                 if s.mask_path.endswith("Dataset 2/047.png"))
