"""Supervisely JSON: bitmap (base64 zlib PNG at an origin), polygon with holes, rectangle."""

from __future__ import annotations

import base64
import io
import json
import zlib

import numpy as np
import pytest
from PIL import Image

from unihema.data.catalog import DataError
from unihema.data.formats import encode_bitmap, read_supervisely

H, W = 20, 24


def rgba_bitmap(small: np.ndarray) -> str:
    """A bitmap as the Supervisely SDK writes it: RGBA PNG, the object in the alpha channel."""
    rgba = np.zeros(small.shape + (4,), np.uint8)
    rgba[..., 3] = small * 255
    rgba[..., 0] = 255  # colour carries nothing
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return base64.b64encode(zlib.compress(buf.getvalue())).decode()


def doc():
    small = np.zeros((3, 4), np.uint8)
    small[0, :] = 1
    small[:, 0] = 1
    return {"size": {"height": H, "width": W}, "objects": [
        {"classTitle": "wbc", "geometryType": "bitmap",
         "bitmap": {"data": rgba_bitmap(small), "origin": [5, 7]}},
        {"classTitle": "rbc", "geometryType": "polygon",
         "points": {"exterior": [[2, 2], [12, 2], [12, 12], [2, 12]],
                    "interior": [[[5, 5], [8, 5], [8, 8], [5, 8]]]}},
        {"classTitle": "platelet", "geometryType": "rectangle",
         "points": {"exterior": [[20, 15], [22, 18]], "interior": []}},
    ]}


def write(tmp_path, d):
    p = tmp_path / "img.png.json"
    p.write_text(json.dumps(d))
    return p


def test_objects_as_full_masks(tmp_path):
    ann = read_supervisely(write(tmp_path, doc()))
    assert (ann.width, ann.height) == (W, H)
    bitmap, poly, rect = ann.objects
    assert [o.class_title for o in ann.objects] == ["wbc", "rbc", "platelet"]
    assert [o.geometry_type for o in ann.objects] == ["bitmap", "polygon", "rectangle"]
    assert bitmap.mask.shape == (H, W) and bitmap.mask.dtype == bool
    assert bitmap.mask.sum() == 6 and bitmap.mask[7, 5:9].all() and bitmap.mask[7:10, 5].all()
    assert not bitmap.mask[8, 6]
    assert bitmap.box == (5.0, 7.0, 9.0, 10.0)
    assert poly.mask[3, 3] and poly.mask[12, 12] and not poly.mask[6, 6]  # a hole
    assert not poly.mask[13, 13]
    assert rect.mask.sum() == 3 * 4 and rect.box == (20.0, 15.0, 23.0, 19.0)


def test_encode_bitmap_round_trip(tmp_path):
    mask = np.zeros((H, W), bool)
    mask[4:9, 10:20] = True
    mask[6, 12] = False
    d = {"size": {"height": H, "width": W},
         "objects": [{"classTitle": "x", "geometryType": "bitmap", "bitmap": encode_bitmap(mask)}]}
    np.testing.assert_array_equal(read_supervisely(write(tmp_path, d)).objects[0].mask, mask)


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d.pop("size"), "size: expected 'size'"),
    (lambda d: d["objects"][0].pop("classTitle"), r"objects\[0\]: object without"),
    (lambda d: d["objects"][2].update(geometryType="point"), "unsupported geometryType 'point'"),
    (lambda d: d["objects"][0]["bitmap"].update(data="!!notbase64"),
     r"objects\[0\]\.bitmap\.data: bitmap data is not base64"),
    (lambda d: d["objects"][0]["bitmap"].update(origin=[22, 0]), "extends outside"),
    (lambda d: d["objects"][1]["points"].update(exterior=[[1, 2], [3, 4]]), ">= 3 points"),
    (lambda d: d["objects"][1]["points"].update(exterior=[[1, 2, 3]]), "list of \\[x, y\\]"),
])
def test_malformed(tmp_path, edit, expected):
    d = doc()
    edit(d)
    path = write(tmp_path, d)
    with pytest.raises(DataError, match=expected) as err:
        read_supervisely(path)
    assert str(path) in str(err.value)
