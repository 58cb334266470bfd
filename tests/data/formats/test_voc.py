"""Pascal VOC reader: 1-based inclusive indices become pixel edges; bad files are named."""

from __future__ import annotations

import pytest

from unihema.data.catalog import DataError
from unihema.data.formats import read_voc

GOOD = """<annotation>
  <filename>BloodImage_00001.jpg</filename>
  <size><width>640</width><height>480</height><depth>3</depth></size>
  <object><name>RBC</name><truncated>1</truncated><difficult>0</difficult>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>640</xmax><ymax>480</ymax></bndbox></object>
  <object><name>WBC</name>
    <bndbox><xmin>10.5</xmin><ymin>20</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object>
</annotation>
"""


def write(tmp_path, text, name="a.xml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_reads_objects_and_converts_one_based(tmp_path):
    ann = read_voc(write(tmp_path, GOOD))
    assert (ann.filename, ann.width, ann.height) == ("BloodImage_00001.jpg", 640, 480)
    assert [o.name for o in ann.objects] == ["RBC", "WBC"]
    assert ann.objects[0].box == (0.0, 0.0, 640.0, 480.0)  # the whole image
    assert ann.objects[0].truncated and not ann.objects[0].difficult
    assert ann.objects[1].box == (9.5, 19.0, 30.0, 40.0)
    assert not ann.objects[1].truncated


def test_zero_based_edges_unchanged(tmp_path):
    ann = read_voc(write(tmp_path, GOOD), one_based=False)
    assert ann.objects[0].box == (1.0, 1.0, 640.0, 480.0)


def test_missing_size_gives_none_and_no_objects(tmp_path):
    ann = read_voc(write(tmp_path, "<annotation><filename>x.jpg</filename></annotation>"))
    assert ann.width is None and ann.height is None and ann.objects == []


@pytest.mark.parametrize("text, expected", [
    ("<annotation><object><name>RBC</name></annotation>", r"a\.xml:1: malformed XML"),
    ("<annotations/>", "root element is <annotations>"),
    ("<annotation><object><bndbox/></object></annotation>", r"object 0: missing or empty"),
    ("<annotation><object><name>RBC</name></object></annotation>", "has no <bndbox>"),
    ("<annotation><object><name>RBC</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax>"
     "</bndbox></object></annotation>", r"object 0/<bndbox>/<ymax>: missing"),
    ("<annotation><object><name>RBC</name><bndbox><xmin>a</xmin><ymin>2</ymin><xmax>3</xmax>"
     "<ymax>4</ymax></bndbox></object></annotation>", r"<xmin>: expected a number, got 'a'"),
    ("<annotation><size><width>w</width><height>1</height></size></annotation>",
     r"<size>/<width>"),
    ("<annotation><object><name>RBC</name><difficult>2</difficult><bndbox><xmin>1</xmin>"
     "<ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>",
     r"object 0/<difficult>: expected 0 or 1"),
])
def test_malformed_input_names_file_and_element(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=expected) as err:
        read_voc(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_voc(tmp_path / "none.xml")
