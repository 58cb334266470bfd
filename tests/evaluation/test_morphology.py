"""MorphologyEvaluator: attribute accuracy by hand, missing attributes, sentence metrics."""

from __future__ import annotations

import pytest

from unihema.data.text import language
from unihema.data.vocab import ATTRIBUTES
from unihema.evaluation import EVALUATORS
from unihema.evaluation import tasks  # noqa: F401  (registers the evaluators)
from unihema.evaluation.morphology import MorphologyEvaluator
from unihema.evaluation.text import corpus_bleu

MONO = {"cell_size": "big", "nucleus_shape": "unsegmented-indented", "cytoplasm_colour": "blue"}
LYMPH = {"cell_size": "small", "nucleus_shape": "unsegmented-round"}


def run(gt_attrs, preds, targets=None):
    ev = MorphologyEvaluator()
    targets = targets or [language.describe_cell(None, a) for a in gt_attrs]
    ev.process({"attributes": gt_attrs, "targets": targets}, preds)
    return ev, ev.evaluate()


def test_registered():
    assert EVALUATORS.get("morphology") is MorphologyEvaluator
    assert set(MONO) | set(LYMPH) <= set(ATTRIBUTES)


def test_perfect():
    preds = [{"attributes": a, "text": language.describe_cell(None, a)} for a in (MONO, LYMPH)]
    _, m = run([MONO, LYMPH], preds)
    assert m["mean_attribute_accuracy"] == 1.0
    assert m["bleu4"] == pytest.approx(1.0) and m["rouge_l"] == pytest.approx(1.0)


def test_attribute_accuracy_by_hand():
    preds = [
        {"attributes": {"cell_size": "Big ", "nucleus_shape": "irregular"}, "text": ""},
        {"attributes": {"cell_size": "big", "nucleus_shape": "unsegmented-round",
                        "granularity": "yes"}, "text": ""},
    ]
    ev, m = run([MONO, LYMPH], preds)
    assert m["acc/cell_size"] == pytest.approx(0.5)       # "Big " normalises to "big"
    assert m["acc/nucleus_shape"] == pytest.approx(0.5)
    assert m["acc/cytoplasm_colour"] == 0.0               # missing from the prediction
    assert "acc/granularity" not in m                     # not annotated: not scored
    assert m["mean_attribute_accuracy"] == pytest.approx((0.5 + 0.5 + 0.0) / 3)
    assert ev.attribute_pairs["cytoplasm_colour"][("blue", None)] == 1
    assert m["bleu4"] == 0.0 and m["rouge_l"] == 0.0


def test_sentence_metrics_use_text_helpers():
    targets = ["A big round monocyte with an indented nucleus.", "A small round lymphocyte."]
    texts = ["A big monocyte with an indented nucleus.", "A small round lymphocyte."]
    _, m = run([MONO, LYMPH], [{"attributes": {}, "text": t} for t in texts], targets)
    assert m["bleu4"] == pytest.approx(corpus_bleu(texts, targets, 4))
    assert 0.0 < m["bleu4"] < 1.0 and 0.0 < m["rouge_l"] < 1.0


def test_accumulates_and_empty():
    ev = MorphologyEvaluator()
    assert ev.evaluate() == {}
    ev.process({"attributes": [MONO], "targets": ["x"]}, [{"attributes": MONO, "text": "x"}])
    ev.process({"attributes": [LYMPH], "targets": ["y"]}, [{"attributes": {}, "text": "y"}])
    m = ev.evaluate()
    assert m["acc/cell_size"] == 0.5 and m["acc/cytoplasm_colour"] == 1.0
    with pytest.raises(ValueError, match="predictions"):
        ev.process({"attributes": [MONO], "targets": ["x"]}, [])


def test_no_annotation_and_no_prediction():
    ev = MorphologyEvaluator()
    ev.process({"attributes": [{}, {}]}, [{"attributes": {}, "text": ""}, {}])
    assert ev.evaluate() == {}  # nothing annotated and no reference sentence: no metric
    ev = MorphologyEvaluator()
    ev.process({"attributes": [MONO], "targets": ["a big monocyte"]}, [{}])  # predicts nothing
    m = ev.evaluate()
    assert m["mean_attribute_accuracy"] == 0.0
    assert m["bleu4"] == 0.0 and m["rouge_l"] == 0.0
