"""Morphology evaluator: per-attribute accuracy and description BLEU-4 / ROUGE-L.

Inputs per batch (see :mod:`unihema.pipeline.collate`)::

    batch["attributes"][i]   dict attribute name -> value (names and values of
                             :data:`unihema.data.vocab.ATTRIBUTES`; only the annotated ones)
    batch["targets"][i]      str, the reference sentence
                             (:func:`unihema.data.text.language.describe_cell`)

Prediction per item::

    {"attributes": {name: value}, "text": str}

Values are compared after lower-casing and stripping; an attribute missing from the prediction
counts as wrong, a predicted attribute the ground truth lacks is not scored.

Metrics returned by :meth:`MorphologyEvaluator.evaluate`:

* ``acc/<attribute>`` over the items whose ground truth has the attribute;
* ``mean_attribute_accuracy``: mean of the ``acc/*`` values (each attribute weighs the same);
* ``bleu4`` (corpus-level) and ``rouge_l`` of the predicted sentences against the targets
  (:mod:`unihema.evaluation.text`, lower-cased whitespace tokens). Both are absent when the
  batches carry no targets.

After ``evaluate()``: ``ev.attribute_pairs`` (attribute -> Counter of (true, predicted) value
pairs, predicted ``None`` when missing) for per-attribute confusion plots.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Dict, List, Mapping, Optional, Tuple

from unihema.evaluation import EVALUATORS, Evaluator
from unihema.evaluation.text import corpus_bleu, rouge_l

logger = logging.getLogger(__name__)


def _norm(value: Any) -> str:
    return " ".join(str(value).lower().split())


@EVALUATORS.register("morphology")
class MorphologyEvaluator(Evaluator):
    """Attribute accuracy and sentence similarity (see the module docstring)."""

    task = "morphology"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.attribute_pairs: Dict[str, Counter] = {}
        self._texts: List[str] = []
        self._targets: List[str] = []
        self._items = 0

    def process(self, batch: Mapping[str, Any], predictions: List[Dict[str, Any]]) -> None:
        attributes = batch.get("attributes")
        targets = batch.get("targets")
        n = len(attributes if attributes is not None else targets or [])
        if len(predictions) != n:
            raise ValueError(f"{len(predictions)} predictions for a batch of {n} items")
        for i, pred in enumerate(predictions):
            self._items += 1
            predicted = {str(k): _norm(v) for k, v in (pred.get("attributes") or {}).items()}
            for name, value in (attributes[i] if attributes is not None else {}).items():
                got: Optional[str] = predicted.get(str(name))
                pair: Tuple[str, Optional[str]] = (_norm(value), got)
                self.attribute_pairs.setdefault(str(name), Counter())[pair] += 1
            if targets is not None:
                self._texts.append(str(pred.get("text", "")))
                self._targets.append(str(targets[i]))

    def evaluate(self) -> Dict[str, float]:
        if self._items == 0:
            logger.warning("MorphologyEvaluator.evaluate() called before any item was processed")
            return {}
        out: Dict[str, float] = {}
        accs = []
        for name in sorted(self.attribute_pairs):
            pairs = self.attribute_pairs[name]
            total = sum(pairs.values())
            right = sum(c for (t, p), c in pairs.items() if t == p)
            out[f"acc/{name}"] = right / total
            accs.append(right / total)
        if accs:
            out["mean_attribute_accuracy"] = sum(accs) / len(accs)
        if self._targets:
            out["bleu4"] = corpus_bleu(self._texts, self._targets, 4)
            out["rouge_l"] = rouge_l(self._texts, self._targets)
        return out


__all__ = ["MorphologyEvaluator"]
