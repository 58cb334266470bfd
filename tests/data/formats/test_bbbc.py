"""BBBC JSON: rows/columns become xyxy; missing keys are named by their path."""

from __future__ import annotations

import json

import pytest

from unihema.data.catalog import DataError
from unihema.data.formats import read_bbbc_json

DOC = [
    {"image": {"checksum": "abc", "pathname": "/images/a.png",
               "shape": {"r": 120, "c": 160, "channels": 3}},
     "objects": [{"bounding_box": {"minimum": {"r": 10, "c": 20}, "maximum": {"r": 30, "c": 45}},
                  "category": "red blood cell"},
                 {"bounding_box": {"minimum": {"r": 0, "c": 0}, "maximum": {"r": 5, "c": 6}},
                  "category": "trophozoite"}]},
    {"image": {"pathname": "/images/b.png", "shape": {"r": 100, "c": 90}}, "objects": []},
]


def test_read(tmp_path):
    p = tmp_path / "training.json"
    p.write_text(json.dumps(DOC))
    a, b = read_bbbc_json(p)
    assert (a.pathname, a.height, a.width) == ("/images/a.png", 120, 160)
    assert a.objects[0] == ("red blood cell", (20.0, 10.0, 45.0, 30.0))
    assert a.objects[1].category == "trophozoite"
    assert (b.height, b.width, b.objects) == (100, 90, [])


def test_errors(tmp_path):
    p = tmp_path / "training.json"
    bad = json.loads(json.dumps(DOC))
    del bad[0]["objects"][1]["bounding_box"]["maximum"]["c"]
    p.write_text(json.dumps(bad))
    with pytest.raises(DataError,
                       match=r"training.json: \[0\]\.objects\[1\]\.bounding_box\.maximum: missing "
                             r"key 'c'"):
        read_bbbc_json(p)
    p.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match="expected a JSON list"):
        read_bbbc_json(p)
    p.write_text("[\n{]")
    with pytest.raises(DataError, match=r"training.json:2: malformed JSON"):
        read_bbbc_json(p)
