"""Point files: ``x y [class]`` lines, whitespace or commas; boxes centred and clipped."""

from __future__ import annotations

import numpy as np
import pytest

from unihema.data.catalog import DataError
from unihema.data.formats import Point, points_to_boxes, read_points


def test_with_class_whitespace_and_commas(tmp_path):
    p = tmp_path / "1.txt"
    p.write_text("10 20 0\n\n30.5,40,12\n  5\t6  target\n")
    pts = read_points(p, with_class=True)
    assert pts == [Point(10, 20, "0", 1), Point(30.5, 40, "12", 3), Point(5, 6, "target", 4)]


def test_centroids(tmp_path):
    p = tmp_path / "Im001_1.xyc"
    p.write_text("100 200\n300 50\n")
    assert [(q.x, q.y, q.cls) for q in read_points(p, with_class=False)] == \
        [(100, 200, None), (300, 50, None)]


@pytest.mark.parametrize("text, with_class, expected", [
    ("1 2\n", True, r":1: expected 3 fields \(x y class\)"),
    ("1 2\n1 2 3\n", False, r":2: expected 2 fields"),
    ("1 y 3\n", True, r":1: y: expected a number"),
])
def test_bad_lines(tmp_path, text, with_class, expected):
    p = tmp_path / "b.txt"
    p.write_text(text)
    with pytest.raises(DataError, match=expected):
        read_points(p, with_class=with_class)


def test_boxes_centred_and_clipped():
    pts = [Point(50, 40), Point(2, 95), Point(100, 0)]
    boxes = points_to_boxes(pts, 20, 100, 100)
    assert boxes.dtype == np.float32 and boxes.shape == (3, 4)
    np.testing.assert_array_equal(boxes, [[40, 30, 60, 50], [0, 85, 12, 100], [90, 0, 100, 10]])
    assert points_to_boxes([], 20, 100, 100).shape == (0, 4)


def test_point_outside_image_is_named():
    with pytest.raises(DataError, match=r"lab.txt:7: point \(101, 5\) lies outside"):
        points_to_boxes([Point(101, 5, None, 7)], 10, 100, 100, path="lab.txt")
