"""CSV tables: BOM, CRLF and whitespace tolerated; missing columns and ragged rows named."""

from __future__ import annotations

import pytest

from unihema.data.catalog import DataError
from unihema.data.formats import read_csv_table


def test_bom_crlf_whitespace(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes("\ufeffimage ID , class label\r\n1, 2\r\n\r\n 3 ,4\r\n".encode("utf-8"))
    rows = read_csv_table(p, ["image ID", "class label"])
    assert rows == [{"image ID": "1", "class label": "2", "_line": 2},
                    {"image ID": "3", "class label": "4", "_line": 4}]


def test_quoted_fields(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('path,label\n"a, b/c.jpg",x\n')
    assert read_csv_table(p, ["path"])[0]["path"] == "a, b/c.jpg"


@pytest.mark.parametrize("text, expected", [
    ("a,b\n1,2\n", r"t.csv:1: missing column\(s\) \['c'\]; columns found: \['a', 'b'\]"),
    ("a,b,c\n1,2,3\n1,2\n", r"t.csv:3: expected 3 fields"),
    ("a,a,c\n", "duplicate column"),
    ("", "empty file"),
])
def test_errors(tmp_path, text, expected):
    p = tmp_path / "t.csv"
    p.write_text(text)
    with pytest.raises(DataError, match=expected):
        read_csv_table(p, ["a", "c"])


def test_undecodable(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"a,c\n\xff\xfe,1\n")
    with pytest.raises(DataError, match="not utf-8-sig text"):
        read_csv_table(p, ["a"])
    assert read_csv_table(p, ["a"], encoding="latin-1")[0]["c"] == "1"
