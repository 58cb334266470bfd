"""The grounding gap: how much a text answer depends on the image.

A text task is scored twice, with each item's own image and with the images shuffled across
items of the same kind (:class:`unihema.evaluation.runner.ShuffledImages`); the drop of its
:data:`GAP_METRIC` is the gap. The keys, everywhere (suite results, the demo's metrics, the
reports): ``<metric>_shuffled`` and ``grounding_gap``.
"""

from __future__ import annotations

from typing import Dict, Mapping

#: The metric whose drop under shuffled images is the grounding gap, per text task.
GAP_METRIC = {"vqa": "exact_match", "mlm": "token_accuracy"}


def grounding_metrics(task: str, metrics: Mapping[str, float],
                      shuffled: Mapping[str, float]) -> Dict[str, float]:
    """``{"<metric>_shuffled": value with shuffled images, "grounding_gap": metric - that}``
    for the task's :data:`GAP_METRIC` (``{}`` for other tasks or a missing metric)."""
    key = GAP_METRIC.get(task)
    if key is None or key not in metrics or key not in shuffled:
        return {}
    return {f"{key}_shuffled": shuffled[key], "grounding_gap": metrics[key] - shuffled[key]}


__all__ = ["GAP_METRIC", "grounding_metrics"]
