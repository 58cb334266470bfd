"""unihema.analysis.reader: detection thresholds, one for all classes or one per class; per-cell
trust in a smear analysis (the cells a trust state covers carry its verdict, the others and a
model without a state keep today's fields, and the files carry them)."""

from __future__ import annotations

import csv
import json
import statistics

import numpy as np
import pytest

from tests.analysis.conftest import FIELD_UM_PER_PX, WHITE_TYPES, truth_detector, white_trust
from unihema.analysis.outputs import write_analysis
from unihema.analysis.reader import TileReader, parse_min_score
from unihema.analysis.records import ALWAYS_REVIEW, SET_SEPARATOR, read_cells_jsonl
from unihema.analysis.run import analyze


def test_parse_min_score():
    assert parse_min_score("0.3") == 0.3
    assert parse_min_score("white blood cell=0.2, platelet=0.35") == {
        "white blood cell": 0.2, "platelet": 0.35}
    for bad in ("platelet=high", "=0.2", "platelet=0.2,0.3"):
        with pytest.raises(ValueError, match="CLASS=SCORE"):
            parse_min_score(bad)


def test_per_class_thresholds_fill_in_the_default_and_check_names(tiny_pipe):
    r = TileReader.from_pipeline(tiny_pipe, {"platelet": 0.9})
    assert r.thresholds["platelet"] == 0.9
    assert r.thresholds["red blood cell"] == tiny_pipe.score_threshold
    assert r.score_threshold == min(r.thresholds.values())
    with pytest.raises(ValueError, match="the model detects"):
        TileReader.from_pipeline(tiny_pipe, {"neutrophil": 0.2})


def test_a_class_threshold_drops_that_class_only(tiny_pipe, small_field):
    def counts(min_score):
        a = analyze(tiny_pipe, small_field.image, um_per_px=FIELD_UM_PER_PX, progress=False,
                    min_score=min_score)
        boxes = {c.lineage: [] for c in a.cells}
        for c in a.cells:
            boxes[c.lineage].append(c.box)
        return {k: np.array(sorted(v)) for k, v in boxes.items()}

    low = counts(0.0)  # the random model scores every class somewhere
    assert "platelet" in low
    high = counts({"platelet": 1.01, "red blood cell": 0.0, "white blood cell": 0.0})
    assert "platelet" not in high
    for lineage in set(low) - {"platelet"}:
        assert len(high[lineage]) == len(low[lineage])


def _analyze(pipe, field):
    return analyze(pipe, field.image, progress=False, um_per_px=0.2,
                   detections=truth_detector(field))


def test_covered_cells_carry_the_states_verdict(tiny_pipe, small_field):
    plain = _analyze(tiny_pipe, small_field)
    tiny_pipe.trust = white_trust(referral_threshold=0.5, temperature=0.5)
    try:
        judged = _analyze(tiny_pipe, small_field)
        scores = [c.unknown_score for c in judged.cells if c.unknown_score is not None]
        # half the white cells above the threshold: unknown, and so referred
        threshold = statistics.median(scores)
        tiny_pipe.trust = white_trust(threshold, referral_threshold=0.5, temperature=0.5)
        judged = _analyze(tiny_pipe, small_field)
    finally:
        tiny_pipe.trust = None
    assert len(judged.cells) == len(plain.cells)
    whites = [c for c in judged.cells if c.lineage == "white blood cell"]
    assert len(whites) >= 4 and len(scores) == len(whites)
    for c, before in zip(judged.cells, plain.cells):
        if c.lineage != "white blood cell":
            # not typed among the state's classes: no verdict, as without a state
            assert (c.prediction_set, c.unknown_score, c.unknown) == (None, None, None)
            assert (c.type, c.needs_review, c.reason) == (before.type, before.needs_review,
                                                          before.reason)
            continue
        assert set(c.probabilities) == set(WHITE_TYPES)
        assert sum(c.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
        # the temperature of the state (0.5), not the head's (1.0): sharper
        assert max(c.probabilities.values()) >= max(before.probabilities.values()) - 1e-6
        assert c.type == max(c.probabilities, key=c.probabilities.get) == c.prediction_set[0]
        assert set(c.prediction_set) <= set(WHITE_TYPES)
        assert c.unknown == (c.unknown_score > threshold)
        # msp: the score is minus the top calibrated probability
        assert c.unknown_score == pytest.approx(-max(c.probabilities.values()), abs=1e-3)
        refer = c.unknown or max(c.probabilities.values()) < 0.5
        assert c.needs_review == (refer or c.type in ALWAYS_REVIEW or "cut by" in c.reason)
        if c.unknown:
            assert c.reason.startswith("unknown type (score ")
        # the fixed thresholds give way to the state's referral
        assert "low confidence" not in c.reason and "close call" not in c.reason
    assert any(c.unknown for c in whites) and not all(c.unknown for c in whites)
    assert judged.trust["classes"] == WHITE_TYPES and judged.trust["unknown_method"] == "msp"
    assert plain.trust is None


def test_the_files_carry_the_trust_fields(tiny_pipe, small_field, tmp_path):
    tiny_pipe.trust = white_trust(-0.5)
    try:
        a = _analyze(tiny_pipe, small_field)
    finally:
        tiny_pipe.trust = None
    write_analysis(a, tmp_path)
    back = read_cells_jsonl(tmp_path / "cells.jsonl")
    assert [c.to_dict() for c in back] == [c.to_dict() for c in a.cells]
    rows = list(csv.DictReader((tmp_path / "cells.csv").open()))
    assert {"prediction_set", "unknown_score", "unknown"} <= set(rows[0])
    for row, c in zip(rows, a.cells):
        if c.prediction_set is None:
            assert row["prediction_set"] == row["unknown_score"] == row["unknown"] == ""
        else:
            assert row["prediction_set"].split(SET_SEPARATOR) == c.prediction_set
            assert float(row["unknown_score"]) == pytest.approx(c.unknown_score, abs=1e-5)
            assert row["unknown"] == ("true" if c.unknown else "false")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["trust"]["classes"] == WHITE_TYPES
    assert summary["trust"]["fitted_on"]["split"] == "val"
    page = (tmp_path / "report.html").read_text()
    assert 'id="trust" data-trust="1"' in page and 'class="set"' in page
