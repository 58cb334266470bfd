"""``morphology``: a cell's attributes and the sentence that states them.

Item: ``attributes`` dict, ``target`` = :func:`~unihema.data.text.language.describe_cell`. As a
cross-supervision target (on a classify item): ``attributes`` (``{}`` for a cell without
any, a red cell). Flips and rotations only: cell size is an attribute.
"""

from __future__ import annotations

from unihema.data.text import language
from unihema.tasks.base import Field, Metric, Task, TaskPrompts, register


@register
class MorphologyTask(Task):
    name = head = evaluator = "morphology"
    prompts = TaskPrompts(
        (),
        "describe the morphology of this cell",
        (
            "describe the morphology of this cell",
            "Describe this cell.",
            "What does this cell look like?",
            "Give the morphological features of the cell.",
        ),
    )
    geometry = ("flip", "rot90")
    cross_targets = ("classify",)
    fields = (Field("attributes", "attributes"), Field("target", "targets"))
    headline = Metric("mean_attribute_accuracy", "morphology mean attribute accuracy", bar=0.80)
    shown = (Metric("rouge_l", "morphology sentence ROUGE-L"),)
    report_metrics = ("bleu4", "rouge_l")
    unit = "cells"
    trunk = balance = single_cell = True

    def map_item(self, sample, out, *, text_rng, rng, qa_index, train) -> None:
        out["attributes"] = dict(sample.attributes)
        out["target"] = language.describe_cell(sample.label, sample.attributes)
        out["prompt"] = self.render_prompt(text_rng)

    def cross_target(self, sample, out) -> None:
        out["attributes"] = dict(sample.attributes or {})
