"""Mask helpers: the values a mask holds; per-instance masks merged by priority."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from unihema.data.catalog import DataError
from unihema.data.formats import mask_values_present, merge_instance_masks
from unihema.data.io import ImageReadError


def save(path, arr, mode="L"):
    Image.fromarray(np.asarray(arr, dtype=np.uint8), mode=mode).save(path)
    return path


def test_values_present(tmp_path):
    m = np.zeros((8, 9), np.uint8)
    m[2:4, 2:5] = 128
    m[5, 5] = 7
    assert mask_values_present(save(tmp_path / "m.png", m)) == {0, 7, 128}
    with pytest.raises(ImageReadError, match="file not found"):
        mask_values_present(tmp_path / "none.png")


def test_merge_labelled_instances_priority_by_value(tmp_path):
    a = np.zeros((6, 6), np.uint8)
    a[0:4, 0:4] = 255
    b = np.zeros((6, 6), np.uint8)
    b[2:6, 2:6] = 1
    pa, pb = save(tmp_path / "a.bmp", a), save(tmp_path / "b.bmp", b)
    vm = {"cytoplasm": 1, "nucleus": 2}
    one = merge_instance_masks([(pa, "nucleus"), (pb, "cytoplasm")], 6, 6, vm)
    two = merge_instance_masks([(pb, "cytoplasm"), (pa, "nucleus")], 6, 6, vm)
    np.testing.assert_array_equal(one, two)  # order does not matter
    assert one.dtype == np.uint8
    assert one[0, 0] == 2 and one[3, 3] == 2 and one[5, 5] == 1 and one[0, 5] == 0


def test_merge_multi_valued_instances(tmp_path):
    m = np.zeros((5, 5), np.uint8)
    m[0:3, 0:3] = 20
    m[1, 1] = 40
    out = merge_instance_masks([(save(tmp_path / "i_1.bmp", m), None)], 5, 5, {20: 1, 40: 2})
    assert out[1, 1] == 2 and out[0, 0] == 1 and out[4, 4] == 0
    m[4, 4] = 30
    with pytest.raises(DataError, match="instance mask value 30 is not in the value map"):
        merge_instance_masks([(save(tmp_path / "i_2.bmp", m), None)], 5, 5, {20: 1, 40: 2})


def test_merge_errors(tmp_path):
    p = save(tmp_path / "a.png", np.ones((4, 5)))
    with pytest.raises(DataError, match=r"a.png: instance mask is 5x4, expected 6x4"):
        merge_instance_masks([(p, "x")], 4, 6, {"x": 1})
    with pytest.raises(DataError, match="label 'y' is not in the value map"):
        merge_instance_masks([(p, "y")], 4, 5, {"x": 1})
    big = merge_instance_masks([(p, "x")], 4, 5, {"x": 300})
    assert big.dtype == np.int32 and big.max() == 300
