"""Shared pieces of the detection/segmentation adapters: components, boxes, splits, caches."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import dataset_adapters  # noqa: F401 - registers the adapters
from dataset_adapters._detseg import (assign_splits, cache_dir, clip_box, component_boxes,
                                      derived_mask, find_image, map_label)
from dataset_adapters.chula_rbc12 import ChulaRBC12
from unihema.data.catalog import DataError


def test_component_boxes_8_connected_and_min_pixels():
    m = np.zeros((20, 30), dtype=bool)
    m[2:5, 3:8] = True          # 15 px
    m[5, 8] = True              # touches the first one diagonally: same component
    m[10:14, 20:25] = True      # 20 px, separate
    m[18, 0] = True             # 1 px speck
    boxes = component_boxes(m, min_pixels=2)
    assert boxes.tolist() == [[3, 2, 9, 6], [20, 10, 25, 14]]
    assert component_boxes(m).shape == (3, 4)
    assert component_boxes(np.zeros((5, 5), bool)).shape == (0, 4)
    # a U shape whose arms meet only at the bottom is one component
    u = np.zeros((6, 6), dtype=bool)
    u[0:5, 0] = u[0:5, 5] = True
    u[5, :] = True
    assert component_boxes(u).tolist() == [[0, 0, 6, 6]]


def test_clip_box_tolerates_rounding_but_reports_far_boxes(tmp_path):
    ad = ChulaRBC12(tmp_path, on_error="skip")
    assert clip_box(ad, (-1.0, 0.5, 100.8, 50), 100, 50, "a.txt") == (0.0, 0.5, 100.0, 50.0)
    assert clip_box(ad, (10, 10, 130, 40), 100, 50, "a.txt", 3) is None
    assert clip_box(ad, (10, 10, 10, 40), 100, 50, "a.txt", 4) is None
    assert [(p.file, p.line) for p in ad.problems] == [("a.txt", 3), ("a.txt", 4)]
    assert "outside the 100x50 image" in ad.problems[0].reason
    with pytest.raises(DataError, match="a.txt:7: .*outside"):
        clip_box(ChulaRBC12(tmp_path), (0, 0, 200, 10), 100, 50, "a.txt", 7)


def test_map_label_is_case_and_separator_free_and_names_known_labels(tmp_path):
    ad = ChulaRBC12(tmp_path, on_error="skip")
    assert map_label(ad, "White_Blood-Cell", {"white blood cell": "white blood cell"}, "f") \
        == "white blood cell"
    assert map_label(ad, "blob", {"ring": "ring form"}, "f.xml", 2) is None
    assert ad.problems[0].line == 2 and "'blob'" in ad.problems[0].reason
    assert "ring" in ad.problems[0].reason


def test_assign_splits_keeps_patients_together_and_ignores_order():
    keys = [f"p{i // 3}/img{i}" for i in range(60)]
    groups = [k.split("/")[0] for k in keys]
    a = assign_splits(keys, groups)
    b = assign_splits(keys[::-1], groups[::-1])
    assert a == b
    for g in set(groups):
        assert len({a[k] for k in keys if k.startswith(g + "/")}) == 1
    assert {"train", "val", "test"} == set(a.values())


def test_derived_mask_is_cached_and_rebuilt_when_the_source_changes(tmp_path, monkeypatch):
    monkeypatch.delenv("UNIHEMA_CACHE", raising=False)
    ad = ChulaRBC12(tmp_path)
    src = tmp_path / "src.txt"
    src.write_text("x")
    calls = []

    def build():
        calls.append(1)
        return np.full((4, 5), len(calls), dtype=np.uint8)

    path = derived_mask(ad, "a/b", [src], build)
    assert path.parent.parent == cache_dir(ad) and str(path).startswith(str(tmp_path))
    assert ".unihema_cache" in path.parts
    derived_mask(ad, "a/b", [src], build)
    assert len(calls) == 1
    later = time.time() + 5
    os.utime(src, (later, later))
    derived_mask(ad, "a/b", [src], build)
    assert len(calls) == 2
    monkeypatch.setenv("UNIHEMA_CACHE", str(tmp_path / "elsewhere"))
    assert str(cache_dir(ad)).startswith(str(tmp_path / "elsewhere"))


def test_find_image_mirrors_labels_into_images(tmp_path):
    (tmp_path / "labels" / "train").mkdir(parents=True)
    (tmp_path / "images" / "train").mkdir(parents=True)
    txt = tmp_path / "labels" / "train" / "a.txt"
    txt.write_text("")
    img = tmp_path / "images" / "train" / "a.png"
    img.write_bytes(b"")
    assert find_image(txt, [], (".jpg", ".png")) == img
    assert find_image(txt, [], (".jpg",)) is None
