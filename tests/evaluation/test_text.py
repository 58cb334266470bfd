"""Text helpers (BLEU, ROUGE-L, token F1, normalisation) and the vqa / mlm evaluators."""

from __future__ import annotations

import math
import random

import pytest

from unihema.data.text import language
from unihema.evaluation import EVALUATORS
from unihema.evaluation import tasks  # noqa: F401  (registers the evaluators)
from unihema.evaluation.text import (
    MLMEvaluator,
    VQAEvaluator,
    corpus_bleu,
    normalize_answer,
    parse_sentinels,
    rouge_l,
    rouge_l_pair,
    token_f1,
)


def test_registered():
    assert EVALUATORS.get("vqa") is VQAEvaluator
    assert EVALUATORS.get("mlm") is MLMEvaluator


# ----------------------------------------------------------------------------- helpers
def test_bleu_by_hand():
    hyp, ref = "the cat sat on the mat", "the cat sat on a mat"
    # 1-grams 5/6, 2-grams 3/5 (the cat, cat sat, sat on), equal lengths: no brevity penalty
    assert corpus_bleu([hyp], [ref], 1) == pytest.approx(5 / 6)
    assert corpus_bleu([hyp], [ref], 2) == pytest.approx(math.sqrt(5 / 6 * 3 / 5))
    # 3-grams 2/4, 4-grams 1/3 ("the cat sat on")
    assert corpus_bleu([hyp], [ref], 4) == pytest.approx((5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)
    assert corpus_bleu(["the cat sat down"], [ref], 4) == 0.0  # no 4-gram match, no smoothing
    assert corpus_bleu(["a b"], ["a b c d"], 1) == pytest.approx(math.exp(1 - 4 / 2))
    assert corpus_bleu(["The Cat"], ["the cat"], 2) == pytest.approx(1.0)  # lower-cased
    assert corpus_bleu([""], ["a"], 1) == 0.0


def test_bleu_matches_torchmetrics():
    from torchmetrics.text import BLEUScore

    hyps = ["a big round monocyte with an indented nucleus", "a small lymphocyte",
            "no parasites are seen in the field"]
    refs = ["a big round monocyte with a kidney shaped nucleus", "a small round lymphocyte",
            "no parasites are seen"]
    for n in (1, 2, 3, 4):
        ref = float(BLEUScore(n_gram=n)(hyps, [[r] for r in refs]))
        assert corpus_bleu(hyps, refs, n) == pytest.approx(ref, abs=1e-6), n


def test_rouge_l_by_hand_and_torchmetrics():
    # LCS("a b c d", "a c d e") = 3 -> P = R = 3/4
    assert rouge_l_pair("a b c d", "a c d e") == pytest.approx(0.75)
    assert rouge_l_pair("A B", "a b") == 1.0
    assert rouge_l_pair("", "a") == 0.0 and rouge_l_pair("", "") == 1.0
    assert rouge_l(["a b c d", "x"], ["a c d e", "y"]) == pytest.approx(0.375)
    pytest.importorskip("torchmetrics.text")
    from torchmetrics.text import ROUGEScore

    hyps = ["the white cell is a monocyte", "two ring forms are seen"]
    refs = ["the white cells are a monocyte and a lymphocyte", "ring forms are seen in two cells"]
    try:
        ref = ROUGEScore(rouge_keys=("rougeL",))(hyps, refs)["rougeL_fmeasure"]
    except (ImportError, LookupError, ModuleNotFoundError):  # nltk data missing offline
        pytest.skip("torchmetrics ROUGEScore unavailable offline")
    assert rouge_l(hyps, refs) == pytest.approx(float(ref), abs=1e-6)


def test_token_f1():
    assert token_f1("upper left", "upper left") == 1.0
    assert token_f1("upper left corner", "upper left") == pytest.approx(0.8)
    assert token_f1("", "") == 1.0 and token_f1("a", "") == 0.0 and token_f1("a", "b") == 0.0


@pytest.mark.parametrize("raw, norm", [
    ("Two.", "2"), ("2", "2"), ("  Yes. ", "yes"), ("twenty", "20"), ("Zero", "0"),
    ("Upper   Left", "upper left"), ("one monocyte.", "1 monocyte"), ("21", "21"),
])
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


# ----------------------------------------------------------------------------- vqa
def vqa(pairs, qtypes):
    ev = VQAEvaluator()
    ev.process({"targets": [t for _, t in pairs], "qtypes": qtypes},
               [{"text": p} for p, _ in pairs])
    return ev.evaluate()


def test_vqa_metrics():
    m = vqa([("Two.", "2"), ("yes", "no"), ("upper left corner", "upper left"),
             ("A monocyte", "monocyte")], ["count", "presence", "location", "type"])
    assert m["exact_match"] == pytest.approx(0.25)
    assert m["em/count"] == 1.0 and m["em/presence"] == 0.0
    assert m["token_f1/location"] == pytest.approx(0.8)
    assert m["token_f1"] == pytest.approx((1 + 0 + 0.8 + 2 / 3) / 4)
    # unigrams: 2 | yes | upper left corner | a monocyte -> 4 of 7 match; lengths 7 > 5
    assert m["bleu1"] == pytest.approx(4 / 7)
    # LCS F-measures of the normalised pairs coincide with their token F1 here
    assert m["rouge_l"] == pytest.approx(m["token_f1"])


def test_vqa_bleu_orders_by_hand_and_torchmetrics():
    from torchmetrics.text import BLEUScore

    pairs = [("upper left corner", "upper left"), ("a large monocyte", "large monocyte"),
             ("yes", "yes"), ("Three.", "2")]
    m = vqa(pairs, ["location", "type", "presence", "count"])
    hyps = ["upper left corner", "a large monocyte", "yes", "3"]
    refs = ["upper left", "large monocyte", "yes", "2"]
    # unigrams 5/8, bigrams 2/4 (upper left, large monocyte), trigrams 0/2; c = 8 > r = 6
    assert m["bleu1"] == pytest.approx(5 / 8)
    assert m["bleu2"] == pytest.approx(math.sqrt(5 / 8 * 2 / 4))
    assert m["bleu3"] == 0.0 and m["bleu4"] == 0.0  # no 3-gram match, no 4-gram at all
    for n in (1, 2, 3, 4):
        ref = float(BLEUScore(n_gram=n)(hyps, [[r] for r in refs]))
        assert m[f"bleu{n}"] == pytest.approx(ref, abs=1e-6), n


def test_vqa_perfect_short_answers_have_zero_bleu4():
    m = vqa([("yes", "yes"), ("upper left", "upper left")], ["presence", "location"])
    assert m["exact_match"] == 1.0 and m["bleu1"] == 1.0 and m["bleu2"] == 1.0
    assert m["bleu4"] == 0.0  # answers of two words have no 4-grams: the metric, not the model


def test_vqa_no_predictions_and_no_qtypes():
    ev = VQAEvaluator()
    ev.process({"targets": ["yes", "2"]}, [{"text": ""}, {}])  # empty answers, no qtypes
    m = ev.evaluate()
    assert m["exact_match"] == 0.0 and m["token_f1"] == 0.0 and m["rouge_l"] == 0.0
    assert all(m[f"bleu{n}"] == 0.0 for n in (1, 2, 3, 4))
    assert m["em/all"] == 0.0


def test_vqa_accumulates_batches_and_empty():
    ev = VQAEvaluator()
    assert ev.evaluate() == {}
    ev.process({"targets": ["yes"], "qtypes": ["presence"]}, [{"text": "Yes."}])
    ev.process({"targets": ["3"], "qtypes": ["count"]}, [{"text": "three"}])
    assert ev.evaluate()["exact_match"] == 1.0
    with pytest.raises(ValueError, match="predictions"):
        ev.process({"targets": ["3"], "qtypes": ["count"]}, [])


# ----------------------------------------------------------------------------- mlm
def mlm(pairs):
    ev = MLMEvaluator()
    ev.process({"targets": [t for _, t in pairs]}, [{"text": p} for p, _ in pairs])
    return ev.evaluate()


TARGET = "<extra_id_0> white blood <extra_id_1> a monocyte. <extra_id_2>"


def test_parse_sentinels():
    assert parse_sentinels(TARGET) == {"<extra_id_0>": ["white", "blood"],
                                       "<extra_id_1>": ["a", "monocyte."], "<extra_id_2>": []}
    got = parse_sentinels("<pad> junk <extra_id_0>white<extra_id_0> x </s>")
    assert got == {"<extra_id_0>": ["white"]}


def test_mlm_perfect_and_partial():
    assert mlm([(TARGET, TARGET)]) == {"token_accuracy": 1.0, "span_exact_match": 1.0}
    m = mlm([("<extra_id_0> white cell <extra_id_1> a monocyte. <extra_id_2>", TARGET)])
    assert m["token_accuracy"] == pytest.approx(3 / 4)
    assert m["span_exact_match"] == pytest.approx(1 / 2)


def test_mlm_missing_extra_and_garbage():
    # missing <extra_id_0>: its two words are wrong; the other span is still matched by id
    m = mlm([("<extra_id_1> a monocyte. <extra_id_5> extra words", TARGET)])
    assert m["token_accuracy"] == pytest.approx(2 / 4)
    assert m["span_exact_match"] == pytest.approx(1 / 2)
    # words shifted by one position do not count
    m = mlm([("<extra_id_0> the white blood <extra_id_1> <extra_id_2>", TARGET)])
    assert m["token_accuracy"] == 0.0
    assert mlm([("", TARGET), ("%%% <<>> extra_id", TARGET)])["token_accuracy"] == 0.0


def test_mlm_degenerate_inputs():
    assert MLMEvaluator().evaluate() == {}
    # targets without a masked word (only a closing sentinel): nothing to score
    assert mlm([("<extra_id_0> a", "<extra_id_0>"), ("", "")]) == {}
    # the model predicts nothing at all
    assert mlm([("", TARGET)]) == {"token_accuracy": 0.0, "span_exact_match": 0.0}


def test_mlm_on_language_mask_spans():
    report = language.describe_field({"red blood cell": 12, "white blood cell": 1},
                                     white_cells=["monocyte"])
    masked, target = language.mask_spans(report, random.Random(0))
    assert mlm([(target, target)]) == {"token_accuracy": 1.0, "span_exact_match": 1.0}
    assert language.unmask(masked, target) == " ".join(report.split())
