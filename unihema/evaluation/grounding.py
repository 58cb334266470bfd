"""The grounding gap: how much a text answer depends on the image.

A grounded task (``spec.grounded``, :mod:`unihema.tasks`) is scored twice, with each item's
own image and with the images shuffled across items of the same kind
(:class:`unihema.evaluation.runner.ShuffledImages`); the drop of its headline metric is the
gap. The keys, everywhere (suite results, the demo's metrics, the reports):
``<headline>_shuffled`` and ``grounding_gap``.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional

from unihema.tasks import TASKS, get_task, specs


def gap_metric(task: str) -> Optional[str]:
    """The metric whose drop under shuffled images is ``task``'s grounding gap: its headline
    when the task is grounded, else None (also for a name no task is registered under)."""
    if task not in TASKS:
        return None
    spec = get_task(task)
    return spec.headline.name if spec.grounded else None


def grounded_tasks() -> List[str]:
    """The registered tasks with a grounding gap, in registration order."""
    return [spec.name for spec in specs() if spec.grounded]


def grounding_metrics(task: str, metrics: Mapping[str, float],
                      shuffled: Mapping[str, float]) -> Dict[str, float]:
    """``{"<metric>_shuffled": value with shuffled images, "grounding_gap": metric - that}``
    for the task's :func:`gap_metric` (``{}`` for other tasks or a missing metric)."""
    key = gap_metric(task)
    if key is None or key not in metrics or key not in shuffled:
        return {}
    return {f"{key}_shuffled": shuffled[key], "grounding_gap": metrics[key] - shuffled[key]}


__all__ = ["gap_metric", "grounded_tasks", "grounding_metrics"]
