"""YOLO reader: lines, attributes, names files; every bad line is named."""

from __future__ import annotations

import pytest

from unihema.data.catalog import DataError
from unihema.data.formats import read_yolo, read_yolo_names, xyxy_to_yolo, yolo_to_xyxy
from unihema.data.formats.yolo import YoloBox


def test_boxes_and_conversion(tmp_path):
    p = tmp_path / "img.txt"
    p.write_text("0 0.5 0.5 0.25 0.5\n\n# comment\n2 0.1 0.2 0.2 0.2\n")
    boxes = read_yolo(p)
    assert [(b.cls, b.line) for b in boxes] == [(0, 1), (2, 4)]
    assert yolo_to_xyxy(boxes[0], 200, 100) == (75.0, 25.0, 125.0, 75.0)
    x0, y0, x1, y1 = yolo_to_xyxy(boxes[1], 200, 100)
    assert (x0, y0, x1, y1) == pytest.approx((0.0, 10.0, 40.0, 30.0))
    assert xyxy_to_yolo((75, 25, 125, 75), 200, 100) == (0.5, 0.5, 0.25, 0.5)


def test_empty_file_means_no_objects(tmp_path):
    p = tmp_path / "e.txt"
    p.write_text("")
    assert read_yolo(p) == []


def test_attributes(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("3 0.5 0.5 0.1 0.1 0 1 2 4 4 1\n")
    (b,) = read_yolo(p, num_attributes=6)
    assert b == YoloBox(3, 0.5, 0.5, 0.1, 0.1, (0, 1, 2, 4, 4, 1), 1)


@pytest.mark.parametrize("line, n_attr, expected", [
    ("0 0.5 0.5 0.1", 0, r":1: expected 5 fields"),
    ("0 0.1 0.1 0.2 0.1 0.2 0.2", 0, "polygon line"),
    ("a 0.5 0.5 0.1 0.1", 0, r":1: class: expected an integer"),
    ("-1 0.5 0.5 0.1 0.1", 0, "negative class"),
    ("0 0.5 nan 0.1 0.1", 0, r"cy: expected a finite number"),
    ("0 0.5 0.5 0 0.1", 0, "must be > 0"),
    ("0 0.5 0.5 0.1 0.1 1 x", 2, r"attribute 2: expected an integer"),
    ("0 0.5 0.5 0.1 0.1", 2, "expected 7 fields"),
])
def test_bad_lines(tmp_path, line, n_attr, expected):
    p = tmp_path / "bad.txt"
    p.write_text(line + "\n")
    with pytest.raises(DataError, match=expected) as err:
        read_yolo(p, num_attributes=n_attr)
    assert str(p) in str(err.value)


def test_names_from_txt_yaml_list_and_dict(tmp_path):
    (tmp_path / "classes.txt").write_text("WBC\nRBC\nPlatelets\n")
    assert read_yolo_names(tmp_path) == ["WBC", "RBC", "Platelets"]
    (tmp_path / "data.yaml").write_text("nc: 3\nnames: ['WBC', 'RBC', 'Platelets']\n")
    assert read_yolo_names(tmp_path) == ["WBC", "RBC", "Platelets"]  # both files agree
    d = tmp_path / "d"
    d.mkdir()
    (d / "data.yaml").write_text("names:\n  1: RBC\n  0: WBC\n")
    assert read_yolo_names(d / "data.yaml") == ["WBC", "RBC"]
    (d / "obj.names").write_text("WBC\nRBC\n")
    assert read_yolo_names(d) == ["WBC", "RBC"]


@pytest.mark.parametrize("name, text, expected", [
    ("data.yaml", "nc: 2\nnames: [a, b, c]\n", "nc: 2 but names lists 3"),
    ("data.yaml", "names:\n  0: a\n  2: b\n", r"ids must be 0\.\.1"),
    ("data.yaml", "train: x\n", "'names:' key"),
    ("data.yaml", "names: [a, b\n", "malformed YAML"),
    ("classes.txt", "a\n\nb\n", r"classes.txt:2: empty class name"),
])
def test_bad_names(tmp_path, name, text, expected):
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=expected):
        read_yolo_names(tmp_path)


def test_names_disagree_or_absent(tmp_path):
    with pytest.raises(DataError, match="no class-name file"):
        read_yolo_names(tmp_path)
    (tmp_path / "classes.txt").write_text("a\nb\n")
    (tmp_path / "data.yaml").write_text("names: [b, a]\n")
    with pytest.raises(DataError, match="classes.txt lists .* but data.yaml lists"):
        read_yolo_names(tmp_path)
