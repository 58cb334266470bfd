"""``mlm``: fill the masked spans of a report.

Item: ``prompt`` holds the report with T5 sentinels, ``target`` the sentinel string,
``masked_text`` the masked report, ``reading`` the annotations' reading
(:func:`~unihema.tasks.base.truth_reading`). Evaluation masks the same spans every run
(seeded from the key). Flips and rotations only: a report states counts, not positions.
"""

from __future__ import annotations

import random
import zlib

from unihema.data.text import language
from unihema.tasks.base import Field, Metric, Task, TaskPrompts, register, truth_reading


@register
class MLMTask(Task):
    name = head = evaluator = "mlm"
    prompts = TaskPrompts(
        ("text",),
        "fill in the blanks: {text}",
        (
            "fill in the blanks: {text}",
            "Complete the report: {text}",
            "Fill the masked spans of this report: {text}",
        ),
    )
    geometry = ("flip", "rot90")
    fields = (Field("target", "targets"), Field("masked_text", "masked_texts"),
              Field("reading", "readings"))
    headline = Metric("token_accuracy", "MLM masked-token accuracy", bar=0.60)
    report_metrics = ("span_exact_match",)
    grounded = True
    unit = "reports"
    demo_limit = 400

    def map_item(self, sample, out, *, text_rng, rng, qa_index, train) -> None:
        # Evaluation masks the same spans every run: seeded from the key, not Python's hash().
        span_rng = text_rng or random.Random(zlib.crc32(sample.key.encode("utf-8")))
        masked, target = language.mask_spans(sample.report, span_rng)
        out["prompt"] = self.render_prompt(text_rng, text=masked)
        out["target"] = target
        out["masked_text"] = masked
        out["reading"] = truth_reading(sample)
