"""Run a model over (dataset, split, task) sources and score it with the task evaluators.

Returns ``{task: {dataset: {metric: value}}}``. ``shuffle_images=True`` pairs every prompt with
the image of another item of the same source and kind (cell crop or field; a fixed
permutation): the drop in VQA or MLM accuracy it causes measures how much the answers depend on
the image.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from unihema.config.schema import Config, DatasetEntry
from unihema.data.collate import collate
from unihema.engine.data import TaskSplit, build_task_splits
from unihema.evaluation import EVALUATORS
from unihema.evaluation import tasks as _register  # noqa: F401  (registers the evaluators)

logger = logging.getLogger(__name__)


def image_kind(image: torch.Tensor, small_side: int = 128) -> str:
    """``"cell"`` for an image ``[3, H, W]`` whose longer side is at most ``small_side`` pixels
    (a single-cell crop), else ``"field"``."""
    return "cell" if max(image.shape[-2:]) <= small_side else "field"


class ShuffledImages(Dataset):
    """Item ``i`` with the image of item ``perm[i]``, another item of the same kind
    (:func:`image_kind`): a question about a cell gets another cell, one about a field another
    field, so every question still makes sense and only *which* image it sees changes."""

    def __init__(self, base: Dataset, seed: int = 0, small_side: int = 128) -> None:
        self.base = base
        n = len(base)  # type: ignore[arg-type]
        rng = np.random.default_rng(seed)
        groups: Dict[str, List[int]] = {}
        for i in range(n):
            groups.setdefault(image_kind(base[i]["image"], small_side), []).append(i)
        perm = np.arange(n)
        for members in groups.values():
            # a derangement within the group, so no item keeps its own image
            shifted = rng.permutation(len(members))
            for k in range(len(members)):
                if shifted[k] == k and len(members) > 1:
                    j = (k + 1) % len(members)
                    shifted[k], shifted[j] = shifted[j], shifted[k]
            perm[members] = np.asarray(members)[shifted]
        self.perm = perm

    def __len__(self) -> int:
        return len(self.perm)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        item = dict(self.base[i])
        other = self.base[int(self.perm[i])]
        item["image"] = other["image"]
        return item


def evaluate_split(
    model,
    split: TaskSplit,
    *,
    batch_size: int = 16,
    limit: Optional[int] = None,
    shuffle_images: bool = False,
    evaluator_options: Optional[Dict[str, Any]] = None,
    progress: bool = True,
) -> Dict[str, float]:
    """Score ``model`` on one task split (first ``limit`` items)."""
    ds: Dataset = split.dataset
    if limit is not None and limit < len(ds):
        # an evenly spread subset, not the first items (those may all be one kind)
        idx = np.linspace(0, len(ds) - 1, limit).round().astype(int).tolist()
        ds = Subset(ds, idx)
    if shuffle_images:
        ds = ShuffledImages(ds)
    evaluator = EVALUATORS.get(split.task)(**(evaluator_options or {}))
    evaluator.reset()
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate)
    for batch in tqdm(loader, desc=f"eval {split.name}{' (shuffled)' if shuffle_images else ''}",
                      disable=not progress, leave=False):
        evaluator.process(batch, model.predict(batch))
    return evaluator.evaluate()


def evaluate(
    model,
    cfg: Config,
    entries: Sequence[DatasetEntry],
    *,
    tasks: Optional[Sequence[str]] = None,
    limit: Optional[int] = None,
    shuffle_images: bool = False,
    options: Optional[Dict[str, Dict[str, Any]]] = None,
    progress: bool = True,
) -> Dict[str, Dict[str, Dict[str, float]]]:
    """``{task: {dataset: metrics}}`` over every (entry, task) the model supports."""
    results: Dict[str, Dict[str, Dict[str, float]]] = {}
    for split in build_task_splits(entries, cfg, train=False, tasks=tasks or model.config.tasks):
        metrics = evaluate_split(model, split, batch_size=cfg.data.batch_size * 2, limit=limit,
                                 shuffle_images=shuffle_images,
                                 evaluator_options=(options or {}).get(split.task),
                                 progress=progress)
        results.setdefault(split.task, {})[split.entry.name] = metrics
    return results


@torch.no_grad()
def fit_temperature(model, split: TaskSplit, batch_size: int = 32,
                    limit: Optional[int] = None) -> float:
    """Fit the classification head's softmax temperature on ``split`` (held-out data)."""
    head = model.heads["classify"]
    logits: List[torch.Tensor] = []
    labels: List[int] = []
    model.eval()
    ds: Dataset = split.dataset
    if limit is not None and limit < len(ds):
        ds = Subset(ds, range(limit))
    for batch in DataLoader(ds, batch_size=batch_size, collate_fn=collate):
        fused = model.encode(batch["images"], batch["pixel_mask"], list(batch["prompts"]),
                             dense=head.dense)
        logits.extend(head(fused, batch)["pred_logits"])
        labels.extend(batch["labels"].tolist())
    return head.calibrate(logits, labels)
