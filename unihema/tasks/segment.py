"""``segment``: a class per pixel.

Item: ``classes`` (background first, then by pixel value of ``sample.mask_values``),
``mask`` int64 ``[H, W]`` into ``classes``, batched as ``masks [B, H, W]`` with the padding
at ``-1`` (the ignore index). Every geometric augmentation keeps a mask true.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List

from unihema.data.catalog import DataError
from unihema.data.io import read_mask
from unihema.tasks.base import Field, Metric, Task, TaskPrompts, register


def mask_classes(values: Dict[int, str]) -> List[str]:
    """Class names of a mask by pixel value, each once, ``"background"`` first."""
    names = list(dict.fromkeys(values[v] for v in sorted(values)))
    if "background" in names:
        names.remove("background")
        names.insert(0, "background")
    return names


@register
class SegmentTask(Task):
    name = head = evaluator = "segment"
    prompts = TaskPrompts(
        ("classes",),
        "segment: {classes}",
        (
            "segment: {classes}",
            "Label every pixel as one of: {classes}.",
            "Outline each of these in the image: {classes}.",
        ),
    )
    geometry = ("flip", "rot90", "scale", "crop")
    fields = (Field("classes", "classes"), Field("mask", "masks", collate="pad"))
    headline = Metric("mean_dice_fg", "segmentation mean Dice (foreground)", bar=0.75)
    report_metrics = ("mean_iou_fg", "pixel_accuracy")
    leading_classes = ("background",)
    unit = "fields"
    demo_limit = 100
    gallery = "mask"
    plots = ("pixel_confusion",)

    def spatial(self, sample, out, size):
        out["classes"] = mask_classes(sample.mask_values)
        mask = read_mask(sample.mask_path, sample.mask_values, out["classes"])
        h, w = size
        if mask.shape != (h, w):
            raise DataError(
                f"{sample.mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but the image "
                f"is {w}x{h} ({sample.key})"
            )
        return super().spatial(sample, out, size)[0], mask

    def map_item(self, sample, out, *, text_rng, rng, qa_index, train) -> None:
        out["prompt"] = self.render_prompt(text_rng, classes=out["classes"])

    def place(self, out, boxes, mask, keep) -> None:
        out["mask"] = mask.long()

    def default_classes(self, sample):
        values = sample.mask_values
        return [values[v] for v in sorted(values)] if values else None

    def sample_classes(self, sample):
        return list((sample.mask_values or {}).values())

    def relabel(self, sample, coarse, classes, meta):
        values = {v: (n if n == "background" else coarse(n))
                  for v, n in (sample.mask_values or {}).items()}
        return dataclasses.replace(sample, mask_values=values, meta=meta)
