"""``detect``: boxes of the prompted classes.

Item: ``classes`` list[str] (``sample.meta["classes_detect"]`` when the adapter gives the
dataset's class list, else the sorted set of the sample's box labels), ``boxes`` float32
``[N, 4]`` absolute xyxy in the output image, ``box_classes`` int64 ``[N]`` into ``classes``,
``box_attributes`` list of N dicts (``{}`` when the sample has none), all kept in sync when a
crop drops boxes. Every geometric augmentation keeps a box true.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict

import numpy as np
import torch

from unihema.data.catalog import DataError
from unihema.tasks.base import Field, Metric, Task, TaskPrompts, register


@register
class DetectTask(Task):
    name = head = evaluator = "detect"
    prompts = TaskPrompts(
        ("classes",),
        "detect: {classes}",
        (
            "detect: {classes}",
            "Find every object of these kinds in this blood smear: {classes}.",
            "Locate all of the following cells: {classes}.",
            "Draw a box around each of: {classes}.",
        ),
    )
    geometry = ("flip", "rot90", "scale", "crop")
    fields = (Field("classes", "classes"), Field("boxes", "boxes"),
              Field("box_classes", "box_classes"), Field("box_attributes", "box_attributes"))
    headline = Metric("mAP50", "detection mAP@0.5 (mean over classes)", bar=0.60)
    shown = (Metric("mAP", "detection mAP@0.5:0.95"),)
    report_metrics = ("mAP", "mAP75", "count_mae")
    per_class_prefix, per_class_label = "AP50/", "AP@0.5"
    unit = "fields"
    demo_limit = 100
    candidate_unit = "boxes"
    gallery = "boxes"
    plots = ("pr",)

    def spatial(self, sample, out, size):
        return sample.boxes, None

    def map_item(self, sample, out, *, text_rng, rng, qa_index, train) -> None:
        labels = list(sample.box_labels or [])
        classes = list(sample.meta.get("classes_detect") or sorted(set(labels)))
        if not classes:
            raise DataError(
                f"{sample.key}: no boxes and no meta['classes_detect']; an image without cells "
                f"needs the dataset's class list to form its detection prompt"
            )
        unknown = sorted(set(labels) - set(classes))
        if unknown:
            raise DataError(f"{sample.key}: box labels {unknown} are not in classes {classes}")
        index = {c: i for i, c in enumerate(classes)}
        out["classes"] = classes
        out["box_classes"] = torch.tensor([index[n] for n in labels], dtype=torch.int64)
        out["box_attributes"] = [dict(a) for a in (sample.box_attributes or [{}] * len(labels))]
        out["prompt"] = self.render_prompt(text_rng, classes=classes)

    def place(self, out: Dict[str, Any], boxes, mask, keep: np.ndarray) -> None:
        out["boxes"] = boxes.float()
        out["box_classes"] = out["box_classes"][torch.from_numpy(keep)]
        out["box_attributes"] = [out["box_attributes"][i] for i in keep.tolist()]

    def default_classes(self, sample):
        return list(sample.meta["classes_detect"]) if sample.meta.get("classes_detect") else None

    def sample_classes(self, sample):
        return [*(sample.meta.get("classes_detect") or []), *(sample.box_labels or [])]

    def relabel(self, sample, coarse, classes, meta):
        labels = [coarse(lb) for lb in (sample.box_labels or [])]
        return dataclasses.replace(sample, box_labels=labels, meta=meta)

    def restrict(self, sample, kind, names, meta):
        keep = [i for i, lb in enumerate(sample.box_labels or []) if kind(lb) is not None]
        left_out = len(sample.box_labels or []) - len(keep)
        return dataclasses.replace(
            sample, boxes=np.asarray(sample.boxes, np.float32).reshape(-1, 4)[keep],
            box_labels=[kind(sample.box_labels[i]) for i in keep], meta=meta), left_out
