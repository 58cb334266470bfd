"""Cell records: JSON lines round trip, the CSV layout, atomic writes."""

from __future__ import annotations

import csv
import json
import math

import pytest

from unihema.analysis.measure import Measurements
from unihema.analysis.records import (CSV_COLUMNS, CellRecord, read_cells_jsonl,
                                      write_cells_csv, write_cells_jsonl, write_json,
                                      write_text_atomic)


def _cells():
    m = Measurements(area_px=314.0, eq_diameter_px=20.0, perimeter_px=63.0, circularity=0.99,
                     area_um2=19.6, eq_diameter_um=5.0, perimeter_um=15.7, nc_ratio=math.inf,
                     nucleus_fraction=1.0)
    return [
        CellRecord(0, "f1.png", (1, 2, 21, 22), "white blood cell", "monocyte",
                   {"monocyte": 0.7, "lymphocyte": 0.3}, 0.95, {"cell_size": "big"}, m,
                   uncertainty=0.3, needs_review=True, reason="low confidence"),
        CellRecord(1, "f2.png", (5.5, 6, 12, 13), "red blood cell", "target cell"),
    ]


def test_jsonl_round_trip(tmp_path):
    path = write_cells_jsonl(tmp_path / "out" / "cells.jsonl", _cells())
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["box"] == [1.0, 2.0, 21.0, 22.0]
    assert first["measurements"]["nc_ratio"] is None  # inf has no JSON form
    back = read_cells_jsonl(path)
    assert back[1] == _cells()[1]
    assert back[0].measurements.area_px == 314.0 and back[0].probability == 0.7


def test_csv_layout(tmp_path):
    path = write_cells_csv(tmp_path / "cells.csv", _cells())
    rows = list(csv.reader(path.open()))
    header = rows[0]
    assert header[:len(CSV_COLUMNS)] == list(CSV_COLUMNS)
    assert header[len(CSV_COLUMNS):] == ["p:lymphocyte", "p:monocyte", "attr:cell_size"]
    row = dict(zip(header, rows[1]))
    assert row["type"] == "monocyte" and row["probability"] == "0.7"
    assert row["needs_review"] == "true" and row["nc_ratio"] == ""
    assert row["attr:cell_size"] == "big" and row["eq_diameter_um"] == "5"
    other = dict(zip(header, rows[2]))
    assert other["p:monocyte"] == "" and other["area_px"] == "" and other["x0"] == "5.5"
    assert len(rows) == 3


def test_writes_are_atomic(tmp_path):
    path = tmp_path / "summary.json"
    write_json(path, {"a": 1, "b": float("nan")})
    assert json.loads(path.read_text()) == {"a": 1, "b": None}
    with pytest.raises(TypeError):
        write_text_atomic(path, 123)  # fails while writing: the old file stays whole
    assert json.loads(path.read_text()) == {"a": 1, "b": None}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temp file left


def test_bad_box_is_refused():
    with pytest.raises(ValueError, match="x0, y0, x1, y1"):
        CellRecord(0, "f", (1, 2, 3), "red blood cell", "red blood cell")


def test_assess_names_every_reason_for_review():
    from unihema.analysis.records import assess

    assert assess({"monocyte": 0.9, "lymphocyte": 0.1}) == pytest.approx((0.1, False, ""))
    u, review, reason = assess({"monocyte": 0.5, "lymphocyte": 0.45, "basophil": 0.05})
    assert u == pytest.approx(0.5) and review
    assert reason == "low confidence (monocyte 0.50); close call (monocyte 0.50 vs " \
                     "lymphocyte 0.45)"
    u, review, reason = assess({"blast": 0.97, "lymphocyte": 0.03})
    assert review and reason == "blast: always reviewed"
    assert assess({}, "red blood cell", cut=True) == (0.0, True, "cut by a tile edge")
    assert assess({}, "red blood cell") == (0.0, False, "")


def test_always_reviewed_types_are_canonical_terms():
    from unihema.analysis.records import ALWAYS_REVIEW
    from unihema.data import vocab

    assert all(vocab.is_canonical(t) for t in ALWAYS_REVIEW)
