"""The one record every dataset adapter emits: :class:`UnifiedSample`.

A sample is cheap and pure: paths, sizes and labels, never decoded pixels. Conventions:

* ``boxes`` are absolute pixel coordinates ``[N, 4]`` float32 in ``x0, y0, x1, y1`` order, with
  ``0 <= x0 < x1 <= width`` and ``0 <= y0 < y1 <= height`` (pixel edges, not centres).
* Every label (``box_labels``, ``label``, values of ``mask_values``) is a *canonical* term of
  :mod:`unihema.data.vocab`; adapters translate raw names before building a sample.
* ``None`` means "not annotated"; an empty list or dict means "annotated, and there is none".
  A field image with ``boxes`` of shape ``[0, 4]`` says "no cells here", which is a valid
  detection target; ``boxes=None`` says nothing about detection at all.

The tasks a sample supervises follow from which fields are set (see :meth:`UnifiedSample.tasks`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

#: The six task keys, in the order the project lists them everywhere.
TASKS = ("detect", "classify", "segment", "morphology", "mlm", "vqa")


class SampleError(ValueError):
    """A sample violates the record contract; the message names the sample and the field."""


@dataclass(frozen=True)
class QAPair:
    """One question/answer pair grounded in the image.

    ``qtype`` groups questions for per-type metrics: ``count``, ``presence``, ``type``,
    ``attribute``, ``location`` or ``other``.
    """

    question: str
    answer: str
    qtype: str = "other"

    def to_dict(self) -> Dict[str, str]:
        return {"question": self.question, "answer": self.answer, "qtype": self.qtype}


QTYPES = ("count", "presence", "type", "attribute", "location", "other")


@dataclass
class UnifiedSample:
    """A single image with whatever supervision its dataset provides.

    Attributes:
        dataset: registry key of the adapter that produced it (``"bccd"``).
        split: ``"train"``, ``"val"``, ``"test"`` or another split name the adapter declares.
        sample_id: unique within (dataset, split); stable across runs.
        image_path: absolute or root-relative path of the image file.
        width, height: image size in pixels (as stored on disk, before any transform).
        patient_id: groups images of one patient, for patient-aware splits and patient tasks.
        boxes: ``[N, 4]`` float32 absolute ``xyxy`` pixels, or ``None`` (no detection labels).
        box_labels: ``N`` canonical class names, aligned with ``boxes``.
        box_attributes: optional ``N`` dicts of per-box attributes (``{"nucleus_shape": ...}``).
        mask_path: path of a semantic mask image (one value per pixel), or ``None``.
        mask_values: mask pixel value -> canonical class; values absent from the map are an error
            at decode time, never silently read as background.
        label: image-level canonical class (cell type of a crop, disease of a smear), or ``None``.
        label_set: the candidate classes ``label`` is chosen from (the classification prompt);
            adapters fill it with their dataset's class list.
        attributes: morphology attributes of the (single) cell, name -> value.
        qa: question/answer pairs.
        report: free text describing the image (morphology sentence, masked-span training).
        meta: anything else: ``magnification``, ``microscope``, ``stain``, ``license``,
            ``kind`` (``"field"`` or ``"crop"``), ``points`` for point-labelled sources...
    """

    dataset: str
    split: str
    sample_id: str
    image_path: str
    width: int
    height: int
    patient_id: Optional[str] = None
    boxes: Optional[np.ndarray] = None
    box_labels: Optional[List[str]] = None
    box_attributes: Optional[List[Dict[str, str]]] = None
    mask_path: Optional[str] = None
    mask_values: Optional[Dict[int, str]] = None
    label: Optional[str] = None
    label_set: Optional[List[str]] = None
    attributes: Optional[Dict[str, str]] = None
    qa: List[QAPair] = field(default_factory=list)
    report: Optional[str] = None
    meta: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.boxes is not None:
            self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.qa = [q if isinstance(q, QAPair) else QAPair(**q) for q in self.qa]
        if self.mask_values is not None:
            self.mask_values = {int(k): v for k, v in self.mask_values.items()}

    # ------------------------------------------------------------------ derived views
    @property
    def key(self) -> str:
        """``dataset/split/sample_id``: names the sample in every message."""
        return f"{self.dataset}/{self.split}/{self.sample_id}"

    @property
    def num_boxes(self) -> int:
        return 0 if self.boxes is None else int(self.boxes.shape[0])

    def tasks(self) -> List[str]:
        """The tasks this sample supervises, in :data:`TASKS` order."""
        out = []
        if self.boxes is not None:
            out.append("detect")
        if self.label is not None:
            out.append("classify")
        if self.mask_path is not None:
            out.append("segment")
        if self.attributes:
            out.append("morphology")
        if self.report:
            out.append("mlm")
        if self.qa:
            out.append("vqa")
        return out

    def counts(self) -> Dict[str, int]:
        """Number of boxes per class (the counting target)."""
        out: Dict[str, int] = {}
        for name in self.box_labels or []:
            out[name] = out.get(name, 0) + 1
        return out

    # ------------------------------------------------------------------ contract
    def validate(self, vocab_check: bool = True) -> List[str]:
        """Return a list of problems (empty when the sample honours the contract).

        Checks shapes, box geometry, label alignment and, when ``vocab_check``, that every
        label is a canonical term. It never touches the disk (see ``unihema.data.check``).
        """
        from unihema.data import vocab

        problems: List[str] = []
        if not self.sample_id:
            problems.append("sample_id is empty")
        if not (isinstance(self.width, int) and isinstance(self.height, int)):
            problems.append(f"width/height must be int, got {self.width!r}x{self.height!r}")
        elif self.width <= 0 or self.height <= 0:
            problems.append(f"image size must be positive, got {self.width}x{self.height}")
        if self.boxes is not None:
            n = self.boxes.shape[0]
            if self.box_labels is None or len(self.box_labels) != n:
                got = None if self.box_labels is None else len(self.box_labels)
                problems.append(f"boxes has {n} rows but box_labels has {got} entries")
            if self.box_attributes is not None and len(self.box_attributes) != n:
                problems.append(
                    f"boxes has {n} rows but box_attributes has {len(self.box_attributes)}"
                )
            for i, (x0, y0, x1, y1) in enumerate(self.boxes.tolist()):
                if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
                    problems.append(f"box {i} has non-finite coordinates {[x0, y0, x1, y1]}")
                elif x1 <= x0 or y1 <= y0:
                    problems.append(f"box {i} {[x0, y0, x1, y1]} is empty (need x0<x1, y0<y1)")
                elif x0 < 0 or y0 < 0 or x1 > self.width or y1 > self.height:
                    problems.append(
                        f"box {i} {[round(v, 1) for v in (x0, y0, x1, y1)]} lies outside "
                        f"the {self.width}x{self.height} image"
                    )
        elif self.box_labels:
            problems.append("box_labels given without boxes")
        if (self.mask_path is None) != (self.mask_values is None):
            problems.append("mask_path and mask_values must be given together")
        if self.label_set is not None and self.label is not None:
            if self.label not in self.label_set:
                problems.append(f"label '{self.label}' is not in label_set {self.label_set}")
        for q in self.qa:
            if q.qtype not in QTYPES:
                problems.append(f"qa type '{q.qtype}' is not one of {QTYPES}")
            if not q.question.strip() or not q.answer.strip():
                problems.append(f"empty question or answer in {q}")
        if vocab_check:
            names = list(self.box_labels or []) + list((self.mask_values or {}).values())
            names += [self.label] if self.label is not None else []
            names += list(self.label_set or [])
            for name in dict.fromkeys(names):
                if not vocab.is_canonical(name):
                    problems.append(
                        f"label '{name}' is not a canonical term; map it with "
                        f"unihema.data.vocab.canonical()"
                    )
        return problems

    def check(self) -> "UnifiedSample":
        """Raise :class:`SampleError` listing every problem; returns ``self`` when valid."""
        problems = self.validate()
        if problems:
            raise SampleError(f"{self.key}: " + "; ".join(problems))
        return self

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict (numpy arrays become lists; ``None`` fields are kept)."""
        d = dataclasses.asdict(self)
        d["boxes"] = None if self.boxes is None else self.boxes.round(2).tolist()
        d["qa"] = [q.to_dict() for q in self.qa]
        if self.mask_values is not None:
            d["mask_values"] = {str(k): v for k, v in self.mask_values.items()}
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "UnifiedSample":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise SampleError(f"unknown UnifiedSample fields {unknown}; valid: {sorted(names)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas of ``[N, 4]`` xyxy boxes -> ``[N]``."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def summarize(samples: Sequence[UnifiedSample]) -> Dict[str, Any]:
    """Counts per task and per class over a list of samples (used by ``data check``)."""
    per_task: Dict[str, int] = {t: 0 for t in TASKS}
    box_classes: Dict[str, int] = {}
    labels: Dict[str, int] = {}
    mask_classes: Dict[str, int] = {}
    qtypes: Dict[str, int] = {}
    attributes: Dict[str, int] = {}
    for s in samples:
        for t in s.tasks():
            per_task[t] += 1
        for name, c in s.counts().items():
            box_classes[name] = box_classes.get(name, 0) + c
        if s.label is not None:
            labels[s.label] = labels.get(s.label, 0) + 1
        for name in set((s.mask_values or {}).values()):  # a class once per sample
            mask_classes[name] = mask_classes.get(name, 0) + 1
        for q in s.qa:
            qtypes[q.qtype] = qtypes.get(q.qtype, 0) + 1
        for a in (s.attributes or {}):
            attributes[a] = attributes.get(a, 0) + 1
    return {
        "samples": len(samples),
        "tasks": per_task,
        "boxes_per_class": dict(sorted(box_classes.items())),
        "labels": dict(sorted(labels.items())),
        "mask_classes": dict(sorted(mask_classes.items())),
        "qa_types": dict(sorted(qtypes.items())),
        "attributes": dict(sorted(attributes.items())),
    }
