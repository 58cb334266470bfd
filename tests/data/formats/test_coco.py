"""COCO reader: boxes to xyxy, masks decoded exactly as pycocotools does, errors named."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from unihema.data.catalog import DataError
from unihema.data.formats import coco_mask, read_coco

H, W = 20, 30
POLY = [[2, 3, 20, 3, 20, 15, 2, 15], [22, 2, 28, 2, 25, 9]]


def _square_mask():
    m = np.zeros((H, W), dtype=np.uint8)
    m[5:12, 10:25] = 1
    m[14:18, 1:4] = 1
    return m


def doc():
    sq = _square_mask()
    compressed = mask_utils.encode(np.asfortranarray(sq))
    uncompressed_counts = []
    flat = sq.flatten(order="F")
    run, cur = 0, 0
    for v in flat:
        if v == cur:
            run += 1
        else:
            uncompressed_counts.append(run)
            run, cur = 1, v
    uncompressed_counts.append(run)
    return {
        "images": [{"id": 7, "file_name": "a.jpg", "width": W, "height": H},
                   {"id": 8, "file_name": "b.jpg", "width": W, "height": H}],
        "categories": [{"id": 1, "name": "RBC"}, {"id": 2, "name": "WBC"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "bbox": [2, 3, 18, 12],
             "segmentation": POLY, "iscrowd": 0, "area": 200.5},
            {"id": 2, "image_id": 7, "category_id": 2, "bbox": [10, 5, 15, 7],
             "segmentation": {"size": [H, W], "counts": compressed["counts"].decode()},
             "iscrowd": 1},
            {"id": 3, "image_id": 7, "category_id": 2,
             "segmentation": {"size": [H, W], "counts": uncompressed_counts}, "iscrowd": 1},
        ],
    }


def write(tmp_path, d):
    p = tmp_path / "ann.json"
    p.write_text(json.dumps(d, indent=1))
    return p


def test_index_images_categories_annotations(tmp_path):
    idx = read_coco(write(tmp_path, doc()))
    assert [(i.id, i.file_name, i.width, i.height) for i in idx.images] == \
        [(7, "a.jpg", W, H), (8, "b.jpg", W, H)]
    assert idx.categories == {1: "RBC", 2: "WBC"}
    anns = idx.annotations(7)
    assert [a.category for a in anns] == ["RBC", "WBC", "WBC"]
    assert anns[0].box == (2.0, 3.0, 20.0, 15.0) and anns[0].area == 200.5
    assert anns[1].iscrowd and not anns[0].iscrowd
    assert idx.annotations(8) == []
    # no bbox: the segmentation's extent (the two rectangles of the square mask)
    assert anns[2].box == (1.0, 5.0, 25.0, 18.0)


def test_masks_match_pycocotools(tmp_path):
    d = doc()
    idx = read_coco(write(tmp_path, d))
    poly, comp, unc = idx.annotations(7)
    expected_poly = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(POLY, H, W)))
    got = coco_mask(poly, H, W)
    assert got.dtype == bool and got.shape == (H, W)
    np.testing.assert_array_equal(got, expected_poly.astype(bool))
    assert got[8, 10] and got[4, 24] and not got[0, 0]
    np.testing.assert_array_equal(coco_mask(comp, H, W), _square_mask().astype(bool))
    np.testing.assert_array_equal(coco_mask(unc, H, W), _square_mask().astype(bool))


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d.pop("categories"), "missing key 'categories'"),
    (lambda d: d["images"][1].pop("width"), r"images\[1\]: missing key 'width'"),
    (lambda d: d["images"].append(dict(d["images"][0])), r"images\[2\]: duplicate image id 7"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), r"annotations\[0\]\.bbox: expected"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]), "negative width"),
    (lambda d: d["annotations"][1].update(image_id=99), r"annotations\[1\]\.image_id: image_id"),
    (lambda d: d["annotations"][1].update(category_id=5), r"category_id 5 is not in"),
    (lambda d: d["annotations"][2].pop("segmentation"), "neither 'bbox' nor 'segmentation'"),
    (lambda d: d["annotations"][0].update(bbox=[1, "x", 3, 4]), "expected a number"),
])
def test_malformed_input(tmp_path, edit, expected):
    d = doc()
    edit(d)
    path = write(tmp_path, d)
    with pytest.raises(DataError, match=expected) as err:
        read_coco(path)
    assert str(path) in str(err.value)


def test_malformed_json_names_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"images": [],\n "annotations": [,]}')
    with pytest.raises(DataError, match=r"bad\.json:2: malformed JSON"):
        read_coco(p)


def test_bad_segmentations(tmp_path):
    d = doc()
    d["annotations"][0]["segmentation"] = [[1, 2, 3, 4]]
    d["annotations"][1]["segmentation"] = {"size": [H + 1, W], "counts": "abc"}
    d["annotations"][2]["segmentation"] = {"size": [H, W], "counts": [5, 6]}
    with pytest.raises(DataError, match=r"annotations\[2\]\.segmentation: uncompressed RLE"):
        read_coco(write(tmp_path, d))  # no bbox: read_coco needs the segmentation's extent
    d["annotations"][2]["bbox"] = [0, 0, 1, 1]
    idx = read_coco(write(tmp_path, d))
    a, b, c = idx.annotations(7)
    with pytest.raises(DataError, match="at least 3 points"):
        coco_mask(a, H, W)
    with pytest.raises(DataError, match="RLE size"):
        coco_mask(b, H, W)
    with pytest.raises(DataError, match="counts sum to 11, expected 600"):
        coco_mask(c, H, W)
