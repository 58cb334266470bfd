"""The one inference loop, and scoring a task split with it.

:func:`run_evaluation` runs a predictor (anything with ``predict(batch) -> list[dict]``: a
:class:`~unihema.modeling.model.UniHema`, a :class:`~unihema.modeling.reading.ReadingCascade`
around one, a specialist baseline) over a loader, feeds every evaluator each batch and calls
the hooks (galleries, counts); the demo, ``unihema eval``, the baselines and the specialist
comparison all score through it.

:func:`evaluate_split` scores one task split (anything with ``dataset``, ``task`` and
``name``, e.g. a ``TaskSplit`` of the training data path) and returns ``{metric: value}``.
``shuffle_images=True`` pairs every prompt with the image of another item of the same source
and kind (cell crop or field; a fixed permutation): the drop in VQA or MLM accuracy it causes
measures how much the answers depend on the image, the grounding gap
(:mod:`unihema.evaluation.grounding`, keys ``<metric>_shuffled`` and ``grounding_gap``).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from unihema.pipeline.collate import collate
from unihema.evaluation import EVALUATORS, Evaluator
from unihema.evaluation import tasks as _register  # noqa: F401  (registers the evaluators)
from unihema.evaluation.grounding import grounding_metrics  # noqa: F401

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


#: ``hook(batch, predictions, start)`` after each batch; ``start`` is the index of the batch's
#: first item in the loader's dataset
Hook = Callable[[Mapping[str, Any], List[Dict[str, Any]], int], None]

def run_evaluation(model: Any, loader: Iterable[Mapping[str, Any]],
                   evaluators: Sequence[Evaluator], hooks: Sequence[Hook] = (), *,
                   progress: bool = False, desc: str = "eval") -> List[Dict[str, float]]:
    """Run ``model.predict`` over every batch of ``loader`` and score it.

    Every evaluator is reset, then gets ``process(batch, predictions)`` for each batch; each
    hook is called after it with ``(batch, predictions, start)``. Returns the evaluators'
    metrics, in their order.
    """
    evaluators = list(evaluators)
    for evaluator in evaluators:
        evaluator.reset()
    start = 0
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        predictions = model.predict(batch)
        for evaluator in evaluators:
            evaluator.process(batch, predictions)
        for hook in hooks:
            hook(batch, predictions, start)
        start += len(predictions)
    return [evaluator.evaluate() for evaluator in evaluators]


def subset_indices(n: int, limit: Optional[int]) -> Optional[List[int]]:
    """Evenly spread item indices when ``limit < n`` (not the first items: those may all be
    one kind), else ``None``."""
    if limit is None or limit >= n:
        return None
    return np.linspace(0, n - 1, limit).round().astype(int).tolist()


def limited(dataset: Dataset, limit: Optional[int]) -> Dataset:
    """``dataset``, or the :func:`subset_indices` of it under ``limit``."""
    idx = subset_indices(len(dataset), limit)  # type: ignore[arg-type]
    return dataset if idx is None else Subset(dataset, idx)


def evaluate_split(
    model,
    split,
    *,
    batch_size: int = 16,
    limit: Optional[int] = None,
    shuffle_images: bool = False,
    evaluator_options: Optional[Dict[str, Any]] = None,
    progress: bool = True,
    hooks: Sequence[Hook] = (),
) -> Dict[str, float]:
    """Score ``model`` on one task split (``limit`` items, evenly spread)."""
    ds: Dataset = limited(split.dataset, limit)
    if shuffle_images:
        ds = ShuffledImages(ds)
    evaluator = EVALUATORS.get(split.task)(**(evaluator_options or {}))
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate)
    desc = f"eval {split.name}{' (shuffled)' if shuffle_images else ''}"
    return run_evaluation(model, loader, [evaluator], hooks, progress=progress, desc=desc)[0]


@torch.no_grad()
def fit_temperature(model, split: Any, batch_size: int = 32,
                    limit: Optional[int] = None) -> float:
    """Fit the classification head's softmax temperature on ``split`` (held-out data; a task
    split with ``dataset``, as :func:`evaluate_split` takes)."""
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
