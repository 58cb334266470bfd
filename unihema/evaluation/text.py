"""Text metrics (BLEU, ROUGE-L, token F1, answer normalisation) and the vqa / mlm evaluators.

Helpers, all on lower-cased whitespace tokens (see :func:`tokens`):

* :func:`corpus_bleu` — corpus-level BLEU-n, one reference per hypothesis, uniform weights,
  clipped n-gram counts summed over the corpus, brevity penalty ``exp(1 - r / c)`` when the
  corpus hypothesis length ``c`` is not longer than the reference length ``r``, no smoothing
  (0.0 when some n-gram order has no match). Same numbers as torchmetrics ``BLEUScore``.
* :func:`rouge_l` — mean over pairs of the LCS F-measure (beta = 1).
* :func:`token_f1` — SQuAD's bag-of-tokens F1.
* :func:`normalize_answer` — lower case, collapse whitespace, strip, drop trailing periods,
  number words "zero".."twenty" -> digits: ``"Two."`` and ``"2"`` normalise alike.

VQA (``@EVALUATORS.register("vqa")``): prediction ``{"text": str}`` per item; ground truth
``batch["targets"][i]`` (the answer) and ``batch["qtypes"][i]`` (``"all"`` when absent).
Metrics on normalised answers: ``exact_match``, ``token_f1``, ``bleu1`` .. ``bleu4`` (corpus BLEU-n
of :func:`corpus_bleu`), ``rouge_l``, and per question type ``em/<qtype>`` and
``token_f1/<qtype>``.

Reading BLEU on short answers: corpus BLEU-n is a geometric mean over the orders 1..n without
smoothing, so it is 0 as soon as no answer of the corpus shares an n-gram with its reference.
Answers of one to three words have no 4-grams at all, and few 2- or 3-grams: ``bleu4`` (and
often ``bleu2``, ``bleu3``) is 0 even for a perfect model. That is a property of the metric on
short answers, not a failure of the model; ``exact_match`` and ``token_f1`` are the headline
VQA metrics, ``bleu1`` the BLEU that stays informative.

MLM (``@EVALUATORS.register("mlm")``): prediction ``{"text": str}`` and ground truth
``batch["targets"][i]`` in T5 sentinel format (:func:`unihema.data.text.language.mask_spans`),
``"<extra_id_0> white blood <extra_id_1> a monocyte. <extra_id_2>"``. Metrics:

* ``token_accuracy``: over every masked ground-truth word, the fraction for which the
  prediction's span with the same sentinel has the same word (case-insensitive) at the same
  position;
* ``span_exact_match``: the fraction of ground-truth spans whose predicted span is identical.

Sentinels missing from the prediction count as wrong spans; extra or repeated sentinels (the
first occurrence is used), special tokens (``<pad>``, ``</s>``) and text before the first
sentinel are ignored.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from unihema.evaluation import EVALUATORS, Evaluator

logger = logging.getLogger(__name__)

NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}

_SENTINEL = re.compile(r"(<extra_id_\d+>)")
_SPECIAL = re.compile(r"</?s>|<pad>|<unk>")


# ----------------------------------------------------------------------------- helpers
def tokens(text: str) -> List[str]:
    """Lower-cased whitespace tokens."""
    return str(text).lower().split()


def normalize_answer(text: str) -> str:
    """Canonical form of a short answer (see the module docstring)."""
    s = " ".join(str(text).lower().split())
    s = s.rstrip(". ").strip()
    return " ".join(NUMBER_WORDS.get(w, w) for w in s.split())


def _ngrams(words: Sequence[str], n: int) -> Counter:
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str], n: int = 4) -> float:
    """Corpus BLEU-``n`` of ``hypotheses`` against one reference each (module docstring)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    matches = [0] * n
    totals = [0] * n
    hyp_len = ref_len = 0
    for hyp, ref in zip(hypotheses, references):
        h, r = tokens(hyp), tokens(ref)
        hyp_len += len(h)
        ref_len += len(r)
        for k in range(1, n + 1):
            hc, rc = _ngrams(h, k), _ngrams(r, k)
            matches[k - 1] += sum(min(c, rc[g]) for g, c in hc.items())
            totals[k - 1] += max(len(h) - k + 1, 0)
    if min(matches) == 0:
        return 0.0
    log_p = sum(math.log(m / t) for m, t in zip(matches, totals)) / n
    bp = 1.0 if hyp_len > ref_len else math.exp(1.0 - ref_len / hyp_len)
    return float(bp * math.exp(log_p))


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l_pair(hypothesis: str, reference: str) -> float:
    """ROUGE-L F-measure of one pair; 1.0 when both are empty, 0.0 when one is."""
    h, r = tokens(hypothesis), tokens(reference)
    if not h or not r:
        return float(not h and not r)
    lcs = _lcs(h, r)
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(h), lcs / len(r)
    return 2 * p * rec / (p + rec)


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F over pairs (0.0 for an empty corpus)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    scores = [rouge_l_pair(h, r) for h, r in zip(hypotheses, references)]
    return float(sum(scores) / len(scores)) if scores else 0.0


def token_f1(prediction: str, truth: str) -> float:
    """SQuAD token F1 on whitespace tokens (normalise first if wanted)."""
    p, t = prediction.split(), truth.split()
    if not p or not t:
        return float(p == t)
    same = sum((Counter(p) & Counter(t)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(t)
    return 2 * precision * recall / (precision + recall)


def parse_sentinels(text: str) -> Dict[str, List[str]]:
    """``"<extra_id_0> a b <extra_id_1>"`` -> ``{"<extra_id_0>": ["a", "b"], "<extra_id_1>": []}``.

    Text before the first sentinel and special tokens are dropped; a repeated sentinel keeps
    its first span.
    """
    spans: Dict[str, List[str]] = {}
    current = None
    for piece in _SENTINEL.split(_SPECIAL.sub(" ", str(text))):
        if _SENTINEL.fullmatch(piece):
            current = piece if piece not in spans else None
            if current is not None:
                spans[current] = []
        elif current is not None:
            spans[current].extend(piece.split())
    return spans


def _texts(predictions: List[Dict[str, Any]], n: int) -> List[str]:
    if len(predictions) != n:
        raise ValueError(f"{len(predictions)} predictions for a batch of {n} items")
    return [str(p.get("text", "")) for p in predictions]


# ----------------------------------------------------------------------------- evaluators
@EVALUATORS.register("vqa")
class VQAEvaluator(Evaluator):
    """Short-answer VQA metrics on normalised answers (see the module docstring).

    ``bleu2`` .. ``bleu4`` are mostly 0 on answers of one to three words: without smoothing,
    corpus BLEU-n is 0 when no answer has a matching n-gram, a property of the metric.
    """

    task = "vqa"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._pred: List[str] = []
        self._true: List[str] = []
        self._qtype: List[str] = []

    def process(self, batch: Mapping[str, Any], predictions: List[Dict[str, Any]]) -> None:
        targets = list(batch["targets"])
        qtypes = list(batch.get("qtypes") or ["all"] * len(targets))
        self._pred.extend(normalize_answer(t) for t in _texts(predictions, len(targets)))
        self._true.extend(normalize_answer(t) for t in targets)
        self._qtype.extend(str(q) for q in qtypes)

    def evaluate(self) -> Dict[str, float]:
        if not self._true:
            logger.warning("VQAEvaluator.evaluate() called before any item was processed")
            return {}
        em = [float(p == t) for p, t in zip(self._pred, self._true)]
        f1 = [token_f1(p, t) for p, t in zip(self._pred, self._true)]
        out = {
            "exact_match": sum(em) / len(em),
            "token_f1": sum(f1) / len(f1),
            **{f"bleu{n}": corpus_bleu(self._pred, self._true, n) for n in (1, 2, 3, 4)},
            "rouge_l": rouge_l(self._pred, self._true),
        }
        for q in sorted(set(self._qtype)):
            idx = [k for k, qt in enumerate(self._qtype) if qt == q]
            out[f"em/{q}"] = sum(em[k] for k in idx) / len(idx)
            out[f"token_f1/{q}"] = sum(f1[k] for k in idx) / len(idx)
        return out


@EVALUATORS.register("mlm")
class MLMEvaluator(Evaluator):
    """Masked-span recovery: token accuracy and span exact match (see the module docstring)."""

    task = "mlm"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._words = self._words_ok = self._spans = self._spans_ok = 0

    @staticmethod
    def score(prediction: str, target: str) -> Tuple[int, int, int, int]:
        """(masked words, correct words, spans, exact spans) of one item."""
        pred = {k: [w.lower() for w in v] for k, v in parse_sentinels(prediction).items()}
        words = words_ok = spans = spans_ok = 0
        for key, gt in parse_sentinels(target).items():
            if not gt:  # the closing sentinel, or an empty span: nothing was masked
                continue
            gt = [w.lower() for w in gt]
            got = pred.get(key)
            spans += 1
            spans_ok += int(got == gt)
            words += len(gt)
            if got:
                words_ok += sum(int(a == b) for a, b in zip(gt, got))
        return words, words_ok, spans, spans_ok

    def process(self, batch: Mapping[str, Any], predictions: List[Dict[str, Any]]) -> None:
        targets = list(batch["targets"])
        for text, target in zip(_texts(predictions, len(targets)), targets):
            w, wo, s, so = self.score(text, str(target))
            self._words += w
            self._words_ok += wo
            self._spans += s
            self._spans_ok += so

    def evaluate(self) -> Dict[str, float]:
        if self._spans == 0:
            logger.warning("MLMEvaluator.evaluate(): no masked span was processed")
            return {}
        return {
            "token_accuracy": self._words_ok / self._words,
            "span_exact_match": self._spans_ok / self._spans,
        }


__all__ = [
    "MLMEvaluator", "VQAEvaluator", "corpus_bleu", "normalize_answer", "parse_sentinels",
    "rouge_l", "rouge_l_pair", "token_f1", "tokens",
]
