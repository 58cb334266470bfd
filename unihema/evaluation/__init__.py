"""Evaluators: the registry and the reset / process / evaluate contract.

One evaluator per task, registered under the task key::

    @EVALUATORS.register("classify")
    class ClassifyEvaluator(Evaluator):
        def reset(self): ...
        def process(self, batch, predictions): ...   # accumulate one batch
        def evaluate(self): ...                       # -> {metric: value}

The suite runner calls ``reset()`` once per (dataset, split, task), ``process`` for each batch
and ``evaluate()`` at the end, and assembles ``{task: {dataset: {metric: value}}}``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from unihema.registry import Registry

EVALUATORS: Registry[type] = Registry(
    "evaluator",
    signature="cls(**options) -> Evaluator; reset() -> None; "
    "process(batch: dict, predictions: list[dict]) -> None; evaluate() -> dict[str, float]",
)


class Evaluator:
    """Base class: accumulates predictions and computes metrics for one task."""

    task: str = ""

    def reset(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement reset()")

    def process(self, batch: Mapping[str, Any], predictions: List[Dict[str, Any]]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement process()")

    def evaluate(self) -> Dict[str, float]:
        raise NotImplementedError(f"{type(self).__name__} must implement evaluate()")
