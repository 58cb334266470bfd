"""The prompt table: how every task is asked.

Each task has ONE fixed evaluation template and several training templates, owned by its
spec (:attr:`unihema.tasks.Task.prompts`, one module per task under :mod:`unihema.tasks`).
Prompts are rendered from structured fields, never written by adapters, so a benchmark number
always comes from the same wording and training sees paraphrases::

    render("detect", classes=["red blood cell", "platelet"])                # evaluation
    render("detect", classes=[...], rng=random.Random(0))                    # training sample

Fields per task (all required):

=============  ====================================================================
task           fields
=============  ====================================================================
``detect``     ``classes``: list of canonical class names to find
``segment``    ``classes``: list of canonical class names to paint (background first)
``classify``   ``classes``: the candidate labels
``morphology`` none
``mlm``        ``text``: report with T5 sentinels (see ``language.mask_spans``)
``vqa``        ``question``
=============  ====================================================================
"""

from __future__ import annotations

import random
from typing import Iterator, Mapping, Optional

from unihema.tasks import (CLASS_SEPARATOR, TASKS, TaskPrompts, get_task, parse_classes,
                           template_fields)


class _PromptTable(Mapping):
    """task -> :class:`TaskPrompts` of every registered task (a read-only view)."""

    def __getitem__(self, task: str) -> TaskPrompts:
        if task not in TASKS:
            raise KeyError(task)
        return get_task(task).prompts

    def __iter__(self) -> Iterator[str]:
        return iter(TASKS)

    def __len__(self) -> int:
        return len(TASKS)


#: task -> its templates
PROMPTS: Mapping[str, TaskPrompts] = _PromptTable()


def render(task: str, rng: Optional[random.Random] = None, **fields) -> str:
    """Render the prompt of ``task``; the evaluation template unless ``rng`` is given.

    Raises:
        KeyError: unknown task (lists the tasks).
        ValueError: missing or unexpected fields (lists the expected ones).
    """
    if task not in TASKS:
        raise KeyError(f"unknown task '{task}'; tasks: {', '.join(TASKS)}")
    return get_task(task).render_prompt(rng, **fields)


__all__ = ["CLASS_SEPARATOR", "PROMPTS", "TaskPrompts", "parse_classes", "render",
           "template_fields"]
