"""``classify``: one label among the prompted candidates.

Item: ``classes`` = ``sample.label_set``, ``label`` int index, batched as ``labels int64
[B]``. As a cross-supervision target (on a morphology item): ``classes`` (``[]`` without a
label set) and ``label`` (``-1`` when the cell's label is not among them). Flips and
rotations only: a cell's size is itself a class cue (macrocyte, microcyte).
"""

from __future__ import annotations

import dataclasses

from unihema.data.catalog import DataError
from unihema.tasks.base import Field, Metric, Task, TaskPrompts, register


@register
class ClassifyTask(Task):
    name = head = evaluator = "classify"
    prompts = TaskPrompts(
        ("classes",),
        "classify: {classes}",
        (
            "classify: {classes}",
            "Which of these is shown: {classes}?",
            "What is this cell? Options: {classes}.",
            "Choose the class of this image among {classes}.",
        ),
    )
    geometry = ("flip", "rot90")
    cross_targets = ("morphology",)
    fields = (Field("classes", "classes"), Field("label", "labels", collate="stack"))
    headline = Metric("macro_f1", "white-cell type macro-F1", bar=0.80)
    shown = (Metric("ece", "classification ECE (calibrated)"),)
    report_metrics = ("accuracy", "balanced_accuracy", "weighted_f1", "ece", "nll", "aurc",
                      "acc@cov90", "acc@cov80")
    unit = "crops"
    restricts = calibrated = trunk = balance = single_cell = True
    candidate_unit = "crops"
    gallery = "label"
    plots = ("confusion", "reliability", "risk_coverage")

    def sample_classes(self, sample):
        return [*(sample.label_set or []), *([sample.label] if sample.label else [])]

    def map_item(self, sample, out, *, text_rng, rng, qa_index, train) -> None:
        classes = list(sample.label_set or [])
        if sample.label not in classes:
            raise DataError(
                f"{sample.key}: label '{sample.label}' is not in label_set {classes}; the adapter "
                f"must give the candidate classes"
            )
        out["classes"] = classes
        out["label"] = classes.index(sample.label)
        out["prompt"] = self.render_prompt(text_rng, classes=classes)

    def cross_target(self, sample, out) -> None:
        classes = list(sample.label_set or [])
        out["classes"] = classes
        out["label"] = classes.index(sample.label) if sample.label in classes else -1

    def relabel(self, sample, coarse, classes, meta):
        return dataclasses.replace(sample, label=coarse(sample.label), label_set=list(classes),
                                   meta=meta)

    def restrict(self, sample, kind, names, meta):
        label = kind(sample.label)
        if label is None:
            return None, 1
        return dataclasses.replace(sample, label=label, label_set=list(names), meta=meta), 0
