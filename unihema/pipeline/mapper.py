"""From a :class:`UnifiedSample` to the tensors and text of one task: decode, resize, augment.

:class:`DatasetMapper` turns ``(sample, task, rng)`` into one item dict; :class:`TaskDataset`
enumerates the items of one task over a list of samples, with reproducible per-item randomness.

Item dict (every task)::

    image       float32 [3, H, W] in [0, 1]; max(H, W) == image_size at evaluation (or the
                native size of a smaller image unless ``upscale``) and, in
                training, H, W <= image_size (a random rescale s < 1 or a crop shrinks it;
                collate pads)
    task        the task key
    key         sample.key ("dataset/split/sample_id")
    orig_size   (height, width) of the image file
    scale       output pixels per original pixel (resize x random rescale); at evaluation,
                output boxes / scale are original-image coordinates
    prompt      str, from unihema.tasks.prompts.render (random training template, fixed one at
                evaluation)

Per task: the fields of its spec (:mod:`unihema.tasks`, one module per task), which fills
them (:meth:`~unihema.tasks.Task.map_item`) and says how they are batched
(:attr:`~unihema.tasks.Task.fields`).

Cross-supervision (training only, ``cross={task: [other tasks]}``, each pair allowed by the
spec's :attr:`~unihema.tasks.Task.cross_targets`): an item of ``task`` also carries the
targets of the other cell task (:meth:`~unihema.tasks.Task.cross_target`) and
``cross_tasks`` lists them. Missing targets are marked, never invented: the heads' cross
losses skip them.

Geometric augmentation is limited per task to what keeps the target true
(:attr:`~unihema.tasks.Task.geometry`): a VQA answer names locations and counts, a report
states counts, and cell size is itself a class cue (macrocyte, microcyte) and a morphology
attribute.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from unihema.config.schema import AugmentConfig
from unihema.data.catalog import DataError
from unihema.data.io import read_image
from unihema.data.sample import UnifiedSample
from unihema.pipeline.transforms import Augment
from unihema.tasks import TASKS, get_task, specs, truth_reading
# the resize rule lives with the processor saved beside every checkpoint (re-exported here)
from unihema.pipeline.processing import UniHemaProcessor, resized_side, target_side  # noqa: F401

__all__ = ["DatasetMapper", "TaskDataset", "check_cross", "resized_side", "target_side",
           "task_augment_config", "truth_reading"]


def check_cross(cross: Dict[str, Sequence[str]]) -> Dict[str, Tuple[str, ...]]:
    """Validate ``data.cross_supervision``; raises ``ValueError`` naming each bad pair."""
    allowed = {t.name: t.cross_targets for t in specs()}
    bad = [f"{t} -> {o}" for t, others in cross.items() for o in others
           if o not in allowed.get(t, ())]
    if bad:
        valid = ", ".join(f"{t} -> {o}" for t, os_ in allowed.items() for o in os_)
        raise ValueError(f"data.cross_supervision: {bad} are not supported; valid pairs: "
                         f"{valid}")
    return {t: tuple(dict.fromkeys(others)) for t, others in cross.items() if others}


def task_augment_config(cfg: AugmentConfig, task: str) -> AugmentConfig:
    """``cfg`` with the geometric augmentations that would falsify ``task``'s target off."""
    allowed = get_task(task).geometry
    changes: Dict[str, Any] = {}
    if "flip" not in allowed:
        changes.update(hflip=0.0, vflip=0.0)
    if "rot90" not in allowed:
        changes["rot90"] = 0.0
    if "scale" not in allowed:
        changes["scale"] = (1.0, 1.0)
    if "crop" not in allowed:
        changes["crop"] = 0.0
    return dataclasses.replace(cfg, **changes)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**63 - 1))


class DatasetMapper:
    """Decode, resize and (in training) augment a sample for one task.

    Args:
        image_size: longer image side after resizing, in pixels.
        upscale: also enlarge images smaller than ``image_size`` (off by default: a 96-pixel
            cell crop keeps its native magnification, so cell size means the same in crops
            and fields, and small images cost less).
        augment: training augmentations; ``None`` disables them.
        train: training mode (random prompt templates, augmentation, random QA pair) or
            evaluation mode (fixed template, no augmentation, reproducible masking).
        crop_size: single-cell crops (``meta["kind"] == "crop"``) are resized, up or down, to
            this longer side (capped at ``image_size``); 0 keeps their native size.
    """

    def __init__(self, *, image_size: int, augment: Optional[AugmentConfig], train: bool,
                 upscale: bool = False, cross: Optional[Dict[str, Sequence[str]]] = None,
                 crop_size: int = 0) -> None:
        if image_size <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        if crop_size < 0:
            raise ValueError(f"crop_size must be >= 0 (0 = native size), got {crop_size}")
        self.image_size = int(image_size)
        self.crop_size = min(int(crop_size), self.image_size)
        #: cross-supervision targets attached in training (see the module docstring)
        self.cross = check_cross(dict(cross or {}))
        self.upscale = bool(upscale)
        self.train = bool(train)
        self.augment = augment
        #: resizing and normalisation, as at inference (:mod:`unihema.pipeline.processing`)
        self.processor = UniHemaProcessor(image_size=self.image_size, upscale=self.upscale,
                                          crop_size=self.crop_size)
        #: per task, the augmentations its spec allows (a task registered later: on first use)
        self._augments: Dict[str, Augment] = {}
        for t in TASKS if self.train and augment is not None else ():
            self._augment(t)

    @classmethod
    def from_config(cls, cfg: Any, *, train: bool) -> "DatasetMapper":
        """From a root ``Config`` or its ``DataConfig``: ``data.image_size``, ``data.augment``."""
        data = getattr(cfg, "data", cfg)
        return cls(image_size=data.image_size, augment=data.augment, train=train,
                   upscale=data.upscale, cross=data.cross_supervision,
                   crop_size=getattr(data, "crop_size", 0))

    def _augment(self, task: str) -> Optional[Augment]:
        """The training augmentation of ``task`` (None at evaluation or without one)."""
        if not self.train or self.augment is None:
            return None
        if task not in self._augments:
            self._augments[task] = Augment(task_augment_config(self.augment, task),
                                           max_size=self.image_size)
        return self._augments[task]

    # ------------------------------------------------------------------ entry point
    def __call__(
        self,
        sample: UnifiedSample,
        task: str,
        rng: np.random.Generator,
        qa_index: Optional[int] = None,
    ) -> Dict[str, Any]:
        """One item dict (see the module docstring); all randomness comes from ``rng``."""
        spec = _spec(task)
        if not spec.supervises(sample):
            raise ValueError(
                f"sample '{sample.key}' does not supervise task '{task}'; its tasks: "
                f"{sample.tasks()}"
            )
        text_rng = random.Random(_seed(rng)) if self.train else None
        out: Dict[str, Any] = {"task": task, "key": sample.key}

        image = read_image(sample.image_path)
        h, w = image.shape[:2]
        if (w, h) != (sample.width, sample.height):
            raise DataError(
                f"{sample.image_path}: decoded size {w}x{h} differs from the sample's "
                f"{sample.width}x{sample.height} ({sample.key}); annotations would be misplaced"
            )
        out["orig_size"] = (h, w)
        boxes, mask = spec.spatial(sample, out, (h, w))

        tensor = torch.from_numpy(image).permute(2, 0, 1).contiguous()
        tensor, boxes_t, mask_t, scale = self.processor.resize(
            tensor, boxes, mask, single_cell=sample.meta.get("kind") == "crop")
        keep = np.arange(boxes_t.shape[0])
        augment = self._augment(task)
        if augment is not None:
            r = augment.apply(tensor, boxes_t, mask_t, rng)
            tensor, boxes_t, mask_t, keep = r.image, r.boxes, r.mask, r.keep
            scale *= r.scale
        out["image"] = self.processor.normalize(tensor)
        out["scale"] = float(scale)

        spec.map_item(sample, out, text_rng=text_rng, rng=rng, qa_index=qa_index,
                      train=self.train)
        if self.train and task in self.cross:
            out["cross_tasks"] = list(self.cross[task])
            for other in self.cross[task]:
                get_task(other).cross_target(sample, out)
        spec.place(out, boxes_t, mask_t, keep)
        return out


def _spec(task: str):
    """The spec of ``task``; ValueError naming the tasks when there is none."""
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}'; tasks: {', '.join(TASKS)}")
    return get_task(task)


class TaskDataset(Dataset):
    """The items of one task over a list of samples.

    One item per sample that supervises ``task``, or several as the spec says
    (:meth:`~unihema.tasks.Task.item_indices`): for ``vqa``, one per QA pair, in training as
    at evaluation, so a field with seventeen questions is asked all seventeen and the
    questions a model trains on are distributed as those it is scored on (one random pair per
    sample would make single-cell crops, which outnumber fields but carry few questions each,
    four fifths of the training questions). ``__getitem__(i)`` draws its randomness from
    ``np.random.default_rng((seed, epoch, i))``, so an item is reproducible and every epoch
    differs; call :meth:`set_epoch` before each epoch (with persistent DataLoader workers,
    before creating the iterator).

    Args:
        samples: the samples (those without ``task`` are skipped).
        task: a registered task (:data:`unihema.tasks.TASKS`).
        mapper: a :class:`DatasetMapper` whose ``train`` equals ``train``.
        train: training (augmented) or evaluation data.
        seed: base seed of the per-item randomness.
    """

    def __init__(
        self,
        samples: Sequence[UnifiedSample],
        task: str,
        mapper: DatasetMapper,
        *,
        train: bool,
        seed: int = 0,
    ) -> None:
        spec = _spec(task)
        if mapper.train != train:
            raise ValueError(
                f"TaskDataset(train={train}) was given a mapper with train={mapper.train}; "
                f"evaluation data must not be augmented and training data should be"
            )
        self.samples = list(samples)
        self.task = task
        self.mapper = mapper
        self.train = train
        self.seed = int(seed)
        self.epoch = 0
        self.items: List[Tuple[int, Optional[int]]] = []
        for i, s in enumerate(self.samples):
            if spec.supervises(s):
                self.items.extend((i, q) for q in spec.item_indices(s))
        if not self.items:
            raise ValueError(f"none of the {len(self.samples)} samples supervises task '{task}'")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} out of range for {len(self)} items")
        i %= len(self)
        sample_index, qa_index = self.items[i]
        rng = np.random.default_rng((self.seed, self.epoch, i))
        return self.mapper(self.samples[sample_index], self.task, rng, qa_index=qa_index)
