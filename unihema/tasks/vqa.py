"""``vqa``: answer a question about the image.

One item per QA pair of a sample, in training as at evaluation (so the questions a model
trains on are distributed as those it is scored on). Item: ``question``, ``target`` (the
answer), ``qtype``, ``reading`` (:func:`~unihema.tasks.base.truth_reading`). No geometric
augmentation: answers name locations and counts.
"""

from __future__ import annotations

from unihema.tasks.base import Field, Metric, Task, TaskPrompts, register, truth_reading


@register
class VQATask(Task):
    name = head = evaluator = "vqa"
    prompts = TaskPrompts(
        ("question",),
        "question: {question}",
        (
            "question: {question}",
            "{question}",
            "Look at the smear and answer: {question}",
        ),
    )
    geometry = ()
    fields = (Field("question", "questions"), Field("target", "targets"),
              Field("qtype", "qtypes"), Field("reading", "readings"))
    headline = Metric("exact_match", "VQA exact match", bar=0.60)
    report_metrics = ("token_f1", "bleu1", "bleu2", "bleu3", "bleu4", "rouge_l")
    grounded = True
    unit = "questions"
    demo_limit = 800
    gallery = "answer"

    def item_indices(self, sample):
        return list(range(len(sample.qa)))

    def map_item(self, sample, out, *, text_rng, rng, qa_index, train) -> None:
        n = len(sample.qa)
        if qa_index is None:
            if not train:
                raise ValueError(f"{sample.key}: vqa evaluation needs qa_index (0..{n - 1})")
            qa_index = int(rng.integers(n))
        if not 0 <= qa_index < n:
            raise IndexError(f"{sample.key}: qa_index {qa_index} out of range; it has {n} pairs")
        qa = sample.qa[qa_index]
        out.update(question=qa.question, target=qa.answer, qtype=qa.qtype)
        out["prompt"] = self.render_prompt(text_rng, question=qa.question)
        out["reading"] = truth_reading(sample)
