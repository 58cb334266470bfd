"""The single prompt table: how every task is asked.

Each task has ONE fixed evaluation template and several training templates. Prompts are rendered
from structured fields, never written by adapters, so a benchmark number always comes from the
same wording and training sees paraphrases::

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
import string
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

from unihema.data.sample import TASKS


@dataclass(frozen=True)
class TaskPrompts:
    """The templates of one task: ``eval`` is fixed; ``train`` are sampled during training."""

    fields: Tuple[str, ...]
    eval: str
    train: Tuple[str, ...]


PROMPTS: Dict[str, TaskPrompts] = {
    "detect": TaskPrompts(
        ("classes",),
        "detect: {classes}",
        (
            "detect: {classes}",
            "Find every object of these kinds in this blood smear: {classes}.",
            "Locate all of the following cells: {classes}.",
            "Draw a box around each of: {classes}.",
        ),
    ),
    "segment": TaskPrompts(
        ("classes",),
        "segment: {classes}",
        (
            "segment: {classes}",
            "Label every pixel as one of: {classes}.",
            "Outline each of these in the image: {classes}.",
        ),
    ),
    "classify": TaskPrompts(
        ("classes",),
        "classify: {classes}",
        (
            "classify: {classes}",
            "Which of these is shown: {classes}?",
            "What is this cell? Options: {classes}.",
            "Choose the class of this image among {classes}.",
        ),
    ),
    "morphology": TaskPrompts(
        (),
        "describe the morphology of this cell",
        (
            "describe the morphology of this cell",
            "Describe this cell.",
            "What does this cell look like?",
            "Give the morphological features of the cell.",
        ),
    ),
    "mlm": TaskPrompts(
        ("text",),
        "fill in the blanks: {text}",
        (
            "fill in the blanks: {text}",
            "Complete the report: {text}",
            "Fill the masked spans of this report: {text}",
        ),
    ),
    "vqa": TaskPrompts(
        ("question",),
        "question: {question}",
        (
            "question: {question}",
            "{question}",
            "Look at the smear and answer: {question}",
        ),
    ),
}

if set(PROMPTS) != set(TASKS):  # a task without prompts is a programming error, caught at import
    raise RuntimeError(f"prompt table covers {sorted(PROMPTS)}, tasks are {sorted(TASKS)}")

#: Separator between class names in a prompt; the model splits the class list on it.
CLASS_SEPARATOR = "; "


def _format_field(value) -> str:
    if isinstance(value, (list, tuple)):
        return CLASS_SEPARATOR.join(str(v) for v in value)
    return str(value)


def render(task: str, rng: Optional[random.Random] = None, **fields) -> str:
    """Render the prompt of ``task``; the evaluation template unless ``rng`` is given.

    Raises:
        KeyError: unknown task (lists the tasks).
        ValueError: missing or unexpected fields (lists the expected ones).
    """
    if task not in PROMPTS:
        raise KeyError(f"unknown task '{task}'; tasks: {', '.join(TASKS)}")
    spec = PROMPTS[task]
    missing = [f for f in spec.fields if f not in fields]
    extra = [f for f in fields if f not in spec.fields]
    if missing or extra:
        raise ValueError(
            f"prompt '{task}' takes fields {list(spec.fields)}; "
            f"missing {missing}, unexpected {extra}"
        )
    for f in spec.fields:
        if isinstance(fields[f], (list, tuple)) and not fields[f]:
            raise ValueError(f"prompt '{task}': field '{f}' is an empty list")
    template = spec.eval if rng is None else rng.choice(spec.train)
    return template.format(**{k: _format_field(v) for k, v in fields.items()})


def template_fields(template: str) -> Sequence[str]:
    """Names of the ``{fields}`` used by a template string."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def parse_classes(text: str) -> Sequence[str]:
    """Split a rendered class list back into names (inverse of the list formatting)."""
    return [c.strip() for c in text.split(CLASS_SEPARATOR) if c.strip()]
