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
    prompt      str, from unihema.data.prompts.render (random training template, fixed one at
                evaluation)

Per task:

* ``detect``: ``classes`` list[str] (``sample.meta["classes_detect"]`` when the adapter gives
  the dataset's class list, else the sorted set of the sample's box labels), ``boxes`` float32
  ``[N, 4]`` absolute xyxy in the output image, ``box_classes`` int64 ``[N]`` into ``classes``,
  ``box_attributes`` list of N dicts (``{}`` when the sample has none), all kept in sync when a
  crop drops boxes.
* ``segment``: ``classes`` (background first, then by pixel value of ``sample.mask_values``),
  ``mask`` int64 ``[H, W]`` into ``classes``.
* ``classify``: ``classes`` = ``sample.label_set``, ``label`` int index.
* ``morphology``: ``attributes`` dict, ``target`` = :func:`language.describe_cell`.
* ``mlm``: ``prompt`` holds the report with T5 sentinels, ``target`` the sentinel string.
* ``vqa``: ``question``, ``target`` (the answer), ``qtype``.

Cross-supervision (training only, ``cross={task: [other tasks]}``, :data:`CROSS_TASKS`): an
item of ``task`` also carries the targets of the other cell task and ``cross_tasks`` lists
them. A morphology item gets ``classes`` (``sample.label_set``, ``[]`` without one) and
``label`` (``-1`` without a label in it); a classify item gets ``attributes`` (``{}`` for a
cell without attributes, a red cell). Missing targets are marked, never invented: the heads'
cross losses skip them.

Geometric augmentation is limited per task to what keeps the target true (:data:`GEOMETRY`):
a VQA answer names locations and counts, a report states counts, and cell size is itself a
class cue (macrocyte, microcyte) and a morphology attribute.
"""

from __future__ import annotations

import dataclasses
import random
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from unihema.config.schema import AugmentConfig
from unihema.data import language, prompts
from unihema.data.catalog import DataError
from unihema.data.io import read_image, read_mask
from unihema.data.sample import TASKS, UnifiedSample
from unihema.data.transforms import Augment
# the resize rule lives with the processor saved beside every checkpoint (re-exported here)
from unihema.data.processing import UniHemaProcessor, resized_side, target_side  # noqa: F401

#: Geometric augmentations allowed per task; photometric ones (colour, stain, blur) apply to all.
GEOMETRY: Dict[str, Tuple[str, ...]] = {
    "detect": ("flip", "rot90", "scale", "crop"),
    "segment": ("flip", "rot90", "scale", "crop"),
    "classify": ("flip", "rot90"),
    "morphology": ("flip", "rot90"),
    "mlm": ("flip", "rot90"),
    "vqa": (),
}

#: Cross-supervision pairs (``data.cross_supervision``): the tasks whose targets an item of
#: each cell task may also carry. Both read the same single-cell crops.
CROSS_TASKS: Dict[str, Tuple[str, ...]] = {"classify": ("morphology",),
                                           "morphology": ("classify",)}


def check_cross(cross: Dict[str, Sequence[str]]) -> Dict[str, Tuple[str, ...]]:
    """Validate ``data.cross_supervision``; raises ``ValueError`` naming each bad pair."""
    bad = [f"{t} -> {o}" for t, others in cross.items() for o in others
           if o not in CROSS_TASKS.get(t, ())]
    if bad:
        valid = ", ".join(f"{t} -> {o}" for t, os_ in CROSS_TASKS.items() for o in os_)
        raise ValueError(f"data.cross_supervision: {bad} are not supported; valid pairs: "
                         f"{valid}")
    return {t: tuple(dict.fromkeys(others)) for t, others in cross.items() if others}


def task_augment_config(cfg: AugmentConfig, task: str) -> AugmentConfig:
    """``cfg`` with the geometric augmentations that would falsify ``task``'s target off."""
    allowed = GEOMETRY[task]
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
        #: resizing and normalisation, as at inference (:mod:`unihema.processing`)
        self.processor = UniHemaProcessor(image_size=self.image_size, upscale=self.upscale,
                                          crop_size=self.crop_size)
        self._augments: Dict[str, Augment] = {}
        if self.train and augment is not None:
            self._augments = {
                t: Augment(task_augment_config(augment, t), max_size=self.image_size)
                for t in TASKS
            }

    @classmethod
    def from_config(cls, cfg: Any, *, train: bool) -> "DatasetMapper":
        """From a root ``Config`` or its ``DataConfig``: ``data.image_size``, ``data.augment``."""
        data = getattr(cfg, "data", cfg)
        return cls(image_size=data.image_size, augment=data.augment, train=train,
                   upscale=data.upscale, cross=data.cross_supervision,
                   crop_size=getattr(data, "crop_size", 0))

    # ------------------------------------------------------------------ entry point
    def __call__(
        self,
        sample: UnifiedSample,
        task: str,
        rng: np.random.Generator,
        qa_index: Optional[int] = None,
    ) -> Dict[str, Any]:
        """One item dict (see the module docstring); all randomness comes from ``rng``."""
        if task not in TASKS:
            raise ValueError(f"unknown task '{task}'; tasks: {', '.join(TASKS)}")
        if task not in sample.tasks():
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

        boxes = np.zeros((0, 4), np.float32)
        mask = None
        if task == "detect":
            boxes = sample.boxes
        elif task == "segment":
            out["classes"] = _mask_classes(sample.mask_values)
            mask = read_mask(sample.mask_path, sample.mask_values, out["classes"])
            if mask.shape != (h, w):
                raise DataError(
                    f"{sample.mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but the image "
                    f"is {w}x{h} ({sample.key})"
                )

        tensor = torch.from_numpy(image).permute(2, 0, 1).contiguous()
        tensor, boxes_t, mask_t, scale = self.processor.resize(
            tensor, boxes, mask, single_cell=sample.meta.get("kind") == "crop")
        keep = np.arange(boxes_t.shape[0])
        if task in self._augments:
            r = self._augments[task].apply(tensor, boxes_t, mask_t, rng)
            tensor, boxes_t, mask_t, keep = r.image, r.boxes, r.mask, r.keep
            scale *= r.scale
        out["image"] = self.processor.normalize(tensor)
        out["scale"] = float(scale)

        getattr(self, f"_{task}")(sample, out, text_rng, qa_index, rng)
        if self.train and task in self.cross:
            out["cross_tasks"] = list(self.cross[task])
            for other in self.cross[task]:
                getattr(self, f"_cross_{other}")(sample, out)
        if task == "detect":
            out["boxes"] = boxes_t.float()
            out["box_classes"] = out["box_classes"][torch.from_numpy(keep)]
            out["box_attributes"] = [out["box_attributes"][i] for i in keep.tolist()]
        elif task == "segment":
            out["mask"] = mask_t.long()
        return out

    # ------------------------------------------------------------------ per task
    def _detect(self, sample, out, text_rng, qa_index, rng) -> None:
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
        out["prompt"] = prompts.render("detect", text_rng, classes=classes)

    def _segment(self, sample, out, text_rng, qa_index, rng) -> None:
        out["prompt"] = prompts.render("segment", text_rng, classes=out["classes"])

    def _classify(self, sample, out, text_rng, qa_index, rng) -> None:
        classes = list(sample.label_set or [])
        if sample.label not in classes:
            raise DataError(
                f"{sample.key}: label '{sample.label}' is not in label_set {classes}; the adapter "
                f"must give the candidate classes"
            )
        out["classes"] = classes
        out["label"] = classes.index(sample.label)
        out["prompt"] = prompts.render("classify", text_rng, classes=classes)

    def _morphology(self, sample, out, text_rng, qa_index, rng) -> None:
        out["attributes"] = dict(sample.attributes)
        out["target"] = language.describe_cell(sample.label, sample.attributes)
        out["prompt"] = prompts.render("morphology", text_rng)

    @staticmethod
    def _cross_classify(sample, out) -> None:
        classes = list(sample.label_set or [])
        out["classes"] = classes
        out["label"] = classes.index(sample.label) if sample.label in classes else -1

    @staticmethod
    def _cross_morphology(sample, out) -> None:
        out["attributes"] = dict(sample.attributes or {})

    def _mlm(self, sample, out, text_rng, qa_index, rng) -> None:
        # Evaluation masks the same spans every run: seeded from the key, not Python's hash().
        span_rng = text_rng or random.Random(zlib.crc32(sample.key.encode("utf-8")))
        masked, target = language.mask_spans(sample.report, span_rng)
        out["prompt"] = prompts.render("mlm", text_rng, text=masked)
        out["target"] = target
        out["masked_text"] = masked
        out["reading"] = truth_reading(sample)

    def _vqa(self, sample, out, text_rng, qa_index, rng) -> None:
        n = len(sample.qa)
        if qa_index is None:
            if not self.train:
                raise ValueError(f"{sample.key}: vqa evaluation needs qa_index (0..{n - 1})")
            qa_index = int(rng.integers(n))
        if not 0 <= qa_index < n:
            raise IndexError(f"{sample.key}: qa_index {qa_index} out of range; it has {n} pairs")
        qa = sample.qa[qa_index]
        out.update(question=qa.question, target=qa.answer, qtype=qa.qtype)
        out["prompt"] = prompts.render("vqa", text_rng, question=qa.question)
        out["reading"] = truth_reading(sample)


def truth_reading(sample: UnifiedSample) -> Dict[str, Any]:
    """What a perfect reader sees on the sample's image: ``{"entries": [(key, text), ...],
    "report": str}`` (:func:`~unihema.data.language.read_field` for an image with boxes,
    :func:`~unihema.data.language.read_cell` for a labelled cell image, no entries otherwise;
    the report is the sample's own). The text tasks train with it in place of the model's own
    reading (``model.reading``, :mod:`unihema.modeling.reading`)."""
    entries: List[Tuple[str, str]] = []
    if sample.boxes is not None and len(sample.boxes):
        entries = language.read_field(sample.box_labels, sample.boxes.tolist(), sample.width,
                                      sample.height)
    elif sample.label:
        entries = language.read_cell({language.lineage(sample.label): sample.label},
                                     sample.attributes)
    return {"entries": entries, "report": sample.report or ""}


def _mask_classes(values: Dict[int, str]) -> List[str]:
    """Class names of a mask by pixel value, each once, ``"background"`` first."""
    names = list(dict.fromkeys(values[v] for v in sorted(values)))
    if "background" in names:
        names.remove("background")
        names.insert(0, "background")
    return names


class TaskDataset(Dataset):
    """The items of one task over a list of samples.

    One item per sample that supervises ``task``; for ``vqa``, one item per QA pair, in training
    as at evaluation: a field with seventeen questions is asked all seventeen, so the questions
    a model trains on are distributed as those it is scored on (one random pair per sample
    would make single-cell crops, which outnumber fields but carry few questions each, four
    fifths of the training questions). ``__getitem__(i)`` draws its randomness from
    ``np.random.default_rng((seed, epoch, i))``, so an item is reproducible and every epoch
    differs; call :meth:`set_epoch` before each epoch (with persistent DataLoader workers,
    before creating the iterator).

    Args:
        samples: the samples (those without ``task`` are skipped).
        task: one of :data:`~unihema.data.sample.TASKS`.
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
        if task not in TASKS:
            raise ValueError(f"unknown task '{task}'; tasks: {', '.join(TASKS)}")
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
            if task not in s.tasks():
                continue
            if task == "vqa":
                self.items.extend((i, q) for q in range(len(s.qa)))
            else:
                self.items.append((i, None))
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
