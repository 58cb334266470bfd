"""Batching items of one task: pad images and masks, keep ragged targets as lists.

:func:`collate` takes the item dicts of :class:`~unihema.pipeline.mapper.DatasetMapper`
and returns::

    task        str, shared by every item (the mixture sampler makes single-task batches)
    images      float32 [B, 3, H, W]; item images at the top left, zeros elsewhere
    pixel_mask  bool [B, H, W]; True on real pixels, False on padding
    masks       int64 [B, H, W], padding = -1 (the ignore index)           (segment)
    labels      int64 [B]                                                  (classify)
    keys, orig_sizes, scales, prompts                                      lists of length B
    classes, boxes, box_classes, box_attributes, attributes, targets,
    questions, qtypes, readings, masked_texts                              lists, when present

Which item key becomes which batch key, and whether it stacks, pads or stays a list, is
declared by the task specs (:attr:`unihema.tasks.Task.fields`: the batch's task and the tasks
whose targets its items carry, ``cross_tasks``). H and W are the largest item sides rounded
up to ``pad_to_multiple`` (32 by default, the backbone's largest stride, so feature maps tile
the padded image exactly). Keys no spec declares are passed through as lists under their own
name.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence

import torch

from unihema.tasks import IGNORE_INDEX, batch_fields

__all__ = ["IGNORE_INDEX", "collate", "slice_batch"]


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def collate(batch: Sequence[Dict[str, Any]], pad_to_multiple: int = 32) -> Dict[str, Any]:
    """Stack one task's items into a batch (see the module docstring for the keys).

    Raises:
        ValueError: empty batch, mixed tasks (names each item's task), items whose keys differ,
            or ``pad_to_multiple < 1``.
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    if pad_to_multiple < 1:
        raise ValueError(f"pad_to_multiple must be >= 1, got {pad_to_multiple}")
    tasks = [item["task"] for item in batch]
    if len(set(tasks)) > 1:
        detail = ", ".join(f"{item.get('key', i)}: {item['task']}" for i, item in enumerate(batch))
        raise ValueError(f"a batch must hold one task, got {sorted(set(tasks))} ({detail})")
    keys = set(batch[0])
    for item in batch[1:]:
        if set(item) != keys:
            raise ValueError(
                f"items of one batch must have the same keys; {item.get('key')} has "
                f"{sorted(item)} but {batch[0].get('key')} has {sorted(keys)}"
            )

    cross = list(dict.fromkeys(t for item in batch for t in item.get("cross_tasks") or ()))
    fields = batch_fields(tasks[0], cross)
    padded = [fields[k] for k in sorted(keys) if k in fields and fields[k].collate == "pad"]
    stacked = [fields[k] for k in sorted(keys) if k in fields and fields[k].collate == "stack"]

    b = len(batch)
    height = _round_up(max(int(item["image"].shape[-2]) for item in batch), pad_to_multiple)
    width = _round_up(max(int(item["image"].shape[-1]) for item in batch), pad_to_multiple)
    images = torch.zeros((b, 3, height, width), dtype=torch.float32)
    pixel_mask = torch.zeros((b, height, width), dtype=torch.bool)
    pads = {f.item: torch.full((b, height, width), f.pad_value, dtype=f.dtype) for f in padded}
    for i, item in enumerate(batch):
        h, w = item["image"].shape[-2:]
        images[i, :, :h, :w] = item["image"]
        pixel_mask[i, :h, :w] = True
        for name, out_t in pads.items():
            if tuple(item[name].shape) != (h, w):
                raise ValueError(
                    f"{item.get('key')}: {name} {tuple(item[name].shape)} does not match image "
                    f"{(h, w)}"
                )
            out_t[i, :h, :w] = item[name]

    out: Dict[str, Any] = {"task": tasks[0], "images": images, "pixel_mask": pixel_mask}
    for f in padded:
        out[f.batch] = pads[f.item]
    for f in stacked:
        out[f.batch] = torch.tensor([item[f.item] for item in batch], dtype=f.dtype)
    done = {"task", "image", *(f.item for f in padded + stacked)}
    for key in sorted(keys - done):
        values: List[Any] = [item[key] for item in batch]
        out[fields[key].batch if key in fields else key] = values
    return out


def slice_batch(batch: Dict[str, Any], start: int, stop: int) -> Dict[str, Any]:
    """Items ``start:stop`` of a collated batch: every tensor and per-item list is sliced on
    its first axis, other values (``task``) are kept. Images keep the batch's padded size."""
    size = int(batch["images"].shape[0])
    if not 0 <= start < stop <= size:
        raise ValueError(f"cannot take items {start}:{stop} of a batch of {size}")
    out: Dict[str, Any] = {}
    for key, value in batch.items():
        if torch.is_tensor(value) and value.dim() > 0:
            out[key] = value[start:stop]
        elif isinstance(value, list):
            if len(value) != size:
                raise ValueError(f"batch key '{key}' has {len(value)} values for {size} items")
            out[key] = value[start:stop]
        else:
            out[key] = value
    return out
