"""unihema.analysis.reader: detection thresholds, one for all classes or one per class."""

from __future__ import annotations

import numpy as np
import pytest

from unihema.analysis.reader import TileReader, parse_min_score
from unihema.analysis.run import analyze

from tests.analysis.conftest import FIELD_UM_PER_PX


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
