"""Tasks as objects: one module per task, each registering a :class:`~.base.Task` spec.

    from unihema.tasks import get_task, specs
    spec = get_task("detect")
    spec.head, spec.evaluator, spec.headline.name      # "detect", "detect", "mAP50"

:data:`TASKS` (name -> spec) iterates in registration order: the built-in tasks in the order of
:data:`unihema.data.sample.TASKS`, then those of plugins (``unihema.plugins`` entry points or
``UNIHEMA_PLUGINS``), which register a seventh task with ``@register`` as the modules here do
(docs/model.md, "Extending").
"""

from __future__ import annotations

from unihema.data.sample import TASKS as _BUILTIN
from unihema.tasks.base import (BASE_FIELDS, CLASS_SEPARATOR, GEOMETRIES, IGNORE_INDEX, TASKS,
                                Field, Metric, Task, TaskPrompts, batch_fields, get_task,
                                parse_classes, register, specs, template_fields, truth_reading)
from unihema.tasks import detect, classify, segment, morphology, mlm, vqa  # noqa: F401,E402

if [n for n in TASKS._table][:len(_BUILTIN)] != list(_BUILTIN):  # a programming error
    raise RuntimeError(f"task specs {list(TASKS._table)} do not cover {list(_BUILTIN)} in order")

__all__ = [
    "BASE_FIELDS", "CLASS_SEPARATOR", "Field", "GEOMETRIES", "IGNORE_INDEX", "Metric", "TASKS",
    "Task", "TaskPrompts", "batch_fields", "get_task", "parse_classes", "register", "specs",
    "template_fields", "truth_reading",
]
