"""The :class:`Task` spec: everything the library knows about one task, in one object.

A task is registered once, in its own module under :mod:`unihema.tasks`, as an instance of a
:class:`Task` subclass::

    @register
    class DetectTask(Task):
        name = "detect"
        head = "detect"                    # key in unihema.modeling.heads.HEADS
        evaluator = "detect"               # key in unihema.evaluation.EVALUATORS
        prompts = TaskPrompts(("classes",), "detect: {classes}", (...))
        geometry = ("flip", "rot90", "scale", "crop")
        fields = (Field("boxes", "boxes"), ...)
        headline = Metric("mAP50", "detection mAP@0.5 (mean over classes)", bar=0.60)

        def map_item(self, sample, out, *, text_rng, rng, qa_index, train): ...

The data pipeline (:mod:`unihema.pipeline.mapper`, :mod:`unihema.pipeline.collate`),
the training
mixture (:mod:`unihema.engine.data`), the reports, plots and the demo read these attributes
and call these methods instead of naming tasks. Heads and evaluators are referred to by their
registry key, and plots by the keys of :data:`unihema.evaluation.plots.GALLERIES` /
``PLOTS``, so this module imports nothing above the data records (layering: config < data
records and text < tasks < data pipeline < modeling < engine < evaluation).

Conventions of the item dict a task fills are those of :mod:`unihema.pipeline.mapper`: the
mapper sets ``task``, ``key``, ``orig_size``, ``image`` ``float32 [3, H, W]`` and ``scale``;
the task adds ``prompt`` and its targets, which :func:`unihema.pipeline.collate.collate`
batches
as its :attr:`Task.fields` say.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from unihema.config.schema import TASK_NAMES
from unihema.data.text import language
from unihema.data.sample import UnifiedSample
from unihema.registry import Registry, load_plugins

#: Separator between class names in a prompt; the model splits the class list on it.
CLASS_SEPARATOR = "; "
#: Value of padded pixels of a ``pad`` field (masks); losses and metrics ignore it.
IGNORE_INDEX = -1
#: The geometric augmentations a task may allow (photometric ones apply to every task).
GEOMETRIES = ("flip", "rot90", "scale", "crop")


# ----------------------------------------------------------------------------- prompts
def _format_field(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return CLASS_SEPARATOR.join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class TaskPrompts:
    """The templates of one task: ``eval`` is fixed; ``train`` are sampled during training.
    ``fields`` are the ``{names}`` every template uses (all required)."""

    fields: Tuple[str, ...]
    eval: str
    train: Tuple[str, ...]

    def render(self, task: str, rng: Optional[random.Random] = None, **fields: Any) -> str:
        """The evaluation template filled in, or a random training one when ``rng`` is given.

        Raises:
            ValueError: missing or unexpected fields, or an empty class list (naming them).
        """
        missing = [f for f in self.fields if f not in fields]
        extra = [f for f in fields if f not in self.fields]
        if missing or extra:
            raise ValueError(f"prompt '{task}' takes fields {list(self.fields)}; "
                             f"missing {missing}, unexpected {extra}")
        for f in self.fields:
            if isinstance(fields[f], (list, tuple)) and not fields[f]:
                raise ValueError(f"prompt '{task}': field '{f}' is an empty list")
        template = self.eval if rng is None else rng.choice(self.train)
        return template.format(**{k: _format_field(v) for k, v in fields.items()})


def template_fields(template: str) -> Sequence[str]:
    """Names of the ``{fields}`` used by a template string."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def parse_classes(text: str) -> Sequence[str]:
    """Split a rendered class list back into names (inverse of the list formatting)."""
    return [c.strip() for c in text.split(CLASS_SEPARATOR) if c.strip()]


# ----------------------------------------------------------------------------- fields, metrics
@dataclass(frozen=True)
class Field:
    """One per-item value and how :func:`~unihema.pipeline.collate.collate` batches it.

    ``collate``: ``"list"`` keeps the values as a list of length ``B``; ``"stack"`` makes a
    ``[B]`` tensor of ``dtype``; ``"pad"`` makes a ``[B, H, W]`` tensor of ``dtype`` from
    ``[h, w]`` items placed top left like the images, ``pad_value`` elsewhere.
    """

    item: str
    batch: str
    collate: str = "list"
    dtype: torch.dtype = torch.int64
    pad_value: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        if self.collate not in ("list", "stack", "pad"):
            raise ValueError(f"field '{self.item}': collate must be 'list', 'stack' or 'pad', "
                             f"got {self.collate!r}")


#: Fields every item has (set by the mapper).
BASE_FIELDS: Tuple[Field, ...] = (
    Field("key", "keys"), Field("orig_size", "orig_sizes"), Field("scale", "scales"),
    Field("prompt", "prompts"),
)


@dataclass(frozen=True)
class Metric:
    """A metric as shown in the demo: its name in the evaluator's output, a label, and the
    bar it is held to (``None``: shown without one)."""

    name: str
    label: str
    bar: Optional[float] = None


# ----------------------------------------------------------------------------- the spec
class Task:
    """The spec of one task; subclass it, set the attributes and register an instance.

    Methods with a default suit tasks without boxes or masks; :meth:`map_item` is required.
    """

    #: the task key (batches, configs, results)
    name: str = ""
    #: registry keys of the head (``unihema.modeling.heads.HEADS``) and the evaluator
    #: (``unihema.evaluation.EVALUATORS``)
    head: str = ""
    evaluator: str = ""
    prompts: TaskPrompts = TaskPrompts((), "", ("",))
    #: geometric augmentations that keep the target true (a subset of :data:`GEOMETRIES`)
    geometry: Tuple[str, ...] = ()
    #: tasks whose targets an item of this one may also carry (``data.cross_supervision``)
    cross_targets: Tuple[str, ...] = ()
    #: the task's own item fields (beyond :data:`BASE_FIELDS`) and how they collate
    fields: Tuple[Field, ...] = ()
    #: the one headline metric, used by the demo, the suite, the report and the plots
    headline: Metric = Metric("", "")
    #: further demo rows, under the headline
    shown: Tuple[Metric, ...] = ()
    #: metrics after the headline (and its shuffled-image pair) in report order
    report_metrics: Tuple[str, ...] = ()
    #: the demo lists the metrics whose names start with this under the headline ("AP50/"),
    #: each as ``<per_class_label> <rest of the name>``
    per_class_prefix: str = ""
    per_class_label: str = ""
    #: scored again with the images shuffled across items; the drop of the headline is the
    #: grounding gap (``<headline>_shuffled``, ``grounding_gap``)
    grounded: bool = False
    #: what one scored item is ("fields", "crops", ...)
    unit: str = "items"
    #: the demo scores at most this many items (None: all)
    demo_limit: Optional[int] = None
    #: the evaluator takes ``restrict_to`` (score only some of the classes)
    restricts: bool = False
    #: its head's probabilities are calibrated by a temperature fitted on validation data
    calibrated: bool = False
    #: its head reads only the global embedding, so trunk-only items (``data.trunk_items``,
    #: pooled trunk features without fusion) can be scored by it
    trunk: bool = False
    #: its input is one cell (a crop), resized to ``data.crop_size`` when that is set, and
    #: normalised with the crop statistics (:class:`unihema.pipeline.processing.UniHemaProcessor`)
    single_cell: bool = False
    #: its items carry one label each, which class-balanced sampling counts (``data.balance``)
    balance: bool = False
    #: what :meth:`restrict` leaves out ("boxes", "crops")
    candidate_unit: str = "items"
    #: key of ``unihema.evaluation.plots.GALLERIES`` (best / worst items), or None
    gallery: Optional[str] = None
    #: keys of ``unihema.evaluation.plots.PLOTS`` drawn from the evaluator's state
    plots: Tuple[str, ...] = ()

    # ------------------------------------------------------------------ prompts and metrics
    def render_prompt(self, rng: Optional[random.Random] = None, **fields: Any) -> str:
        """This task's prompt (see :meth:`TaskPrompts.render`)."""
        return self.prompts.render(self.name, rng, **fields)

    @property
    def shuffled_metric(self) -> str:
        """The headline scored with the images shuffled (grounded tasks)."""
        return f"{self.headline.name}_shuffled"

    def metric_order(self) -> List[str]:
        """Report order: the headline, its shuffled score and the grounding gap (grounded
        tasks), then :attr:`report_metrics`."""
        head = [self.headline.name]
        if self.grounded:
            head += [self.shuffled_metric, "grounding_gap"]
        return head + [m for m in self.report_metrics if m not in head]

    # ------------------------------------------------------------------ items
    def supervises(self, sample: UnifiedSample) -> bool:
        """Whether ``sample`` has this task's targets (default: ``sample.tasks()``)."""
        return self.name in sample.tasks()

    def item_indices(self, sample: UnifiedSample) -> List[Optional[int]]:
        """The items of one sample: ``[None]`` (one item), or one index per part (VQA: one
        per question), passed to :meth:`map_item` as ``qa_index``."""
        return [None]

    def spatial(self, sample: UnifiedSample, out: Dict[str, Any], size: Tuple[int, int]
                ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """Targets that move with the pixels, read before resizing and augmentation:
        ``(boxes float32 [N, 4] xyxy in the file's pixels, mask int [H, W] or None)``;
        ``size`` is the decoded image's ``(H, W)``."""
        return np.zeros((0, 4), np.float32), None

    def map_item(self, sample: UnifiedSample, out: Dict[str, Any], *,
                 text_rng: Optional[random.Random], rng: np.random.Generator,
                 qa_index: Optional[int], train: bool) -> None:
        """Add the prompt and the targets to ``out`` (after the image is resized and
        augmented). ``text_rng``: training text randomness (None at evaluation: fixed
        template); ``rng``: the item's generator."""
        raise NotImplementedError(f"task '{self.name}' must implement map_item")

    def place(self, out: Dict[str, Any], boxes: torch.Tensor, mask: Optional[torch.Tensor],
              keep: np.ndarray) -> None:
        """Store the resized and augmented :meth:`spatial` targets in ``out``: ``boxes
        [M, 4]`` in output pixels, ``mask [H, W]`` and ``keep``, the indices of the boxes a
        crop kept, into the original ``N``."""

    def cross_target(self, sample: UnifiedSample, out: Dict[str, Any]) -> None:
        """Add this task's targets to an item of another task (cross-supervision); a
        missing target is marked (``-1``, ``{}``), never invented."""
        raise NotImplementedError(f"task '{self.name}' has no cross-supervision targets")

    # ------------------------------------------------------------------ class lists
    def relabel(self, sample: UnifiedSample, coarse: Callable[[str], str],
                classes: List[str], meta: Dict[str, Any]) -> UnifiedSample:
        """A copy of ``sample`` with every class label mapped by ``coarse`` onto ``classes``
        and ``meta`` as its meta (``data.<split>.classes.<task>``)."""
        raise NotImplementedError(f"task '{self.name}' has no class labels to map")

    def restrict(self, sample: UnifiedSample, kind: Callable[[str], Optional[str]],
                 names: List[str], meta: Dict[str, Any]
                 ) -> Tuple[Optional[UnifiedSample], int]:
        """``(copy or None, n_left_out)``: ``sample`` prompting and scoring only ``names``
        (``kind(label)``: the name a label falls under, or None)."""
        raise NotImplementedError(f"task '{self.name}' takes no candidates")

    def default_classes(self, sample: UnifiedSample) -> Optional[List[str]]:
        """The class list a saved model uses for this task when a user names none, from the
        first sample of its first training source (None: the task has no such list)."""
        return None

    def sample_classes(self, sample: UnifiedSample) -> List[str]:
        """Every class name ``sample`` offers this task (its candidate list and its labels),
        which a specialist trained on the task must know (``[]``: the task has no classes)."""
        return []

    #: class names a class list of this task always starts with (``("background",)``)
    leading_classes: Tuple[str, ...] = ()

    @property
    def relabels(self) -> bool:
        """Whether :meth:`relabel` is implemented (``classes.<task>`` of a data entry)."""
        return type(self).relabel is not Task.relabel

    @property
    def takes_candidates(self) -> bool:
        """Whether :meth:`restrict` is implemented (``candidates.<task>``)."""
        return type(self).restrict is not Task.restrict

    def __repr__(self) -> str:
        return f"<Task {self.name}: head {self.head!r}, evaluator {self.evaluator!r}>"


def truth_reading(sample: UnifiedSample) -> Dict[str, Any]:
    """What a perfect reader sees on the sample's image: ``{"entries": [(key, text), ...],
    "report": str}`` (:func:`~unihema.data.text.language.read_field` for an image with boxes,
    :func:`~unihema.data.text.language.read_cell` for a labelled cell image, no entries otherwise;
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


# ----------------------------------------------------------------------------- registry
class TaskRegistry(Registry):
    """A :class:`~unihema.registry.Registry` of :class:`Task` instances that iterates in
    registration order (the built-in order detect, classify, segment, morphology, mlm, vqa,
    then plugins), which tables and reports follow."""

    def __iter__(self) -> Iterator[str]:
        load_plugins()  # plugins may register tasks, as in every registry
        return iter(list(self._table))

    def items(self):
        return [(n, self._table[n]) for n in self]

    def unregister(self, name: str) -> None:
        """Remove ``name``, and from the task names a config may use."""
        super().unregister(name)
        TASK_NAMES.discard(name)


TASKS: TaskRegistry = TaskRegistry(
    "task", signature="a Task instance: name, head, evaluator, prompts, fields, headline, "
    "map_item(sample, out, ...)")


def register(cls: type) -> type:
    """Class decorator: check ``cls``'s attributes and register an instance under its name.

    Raises:
        ValueError: no name, a geometry outside :data:`GEOMETRIES`, no headline, templates
            whose fields differ from ``prompts.fields``, or an evaluation template that is
            not also trained on.
    """
    spec = cls()
    where = f"task '{spec.name}' ({cls.__module__}.{cls.__name__})"
    if not spec.name or not spec.head or not spec.evaluator:
        raise ValueError(f"{where}: name, head and evaluator are required")
    bad = [g for g in spec.geometry if g not in GEOMETRIES]
    if bad:
        raise ValueError(f"{where}: geometry {bad} unknown; choose from {list(GEOMETRIES)}")
    if not spec.headline.name:
        raise ValueError(f"{where}: a headline metric is required")
    for template in (spec.prompts.eval, *spec.prompts.train):
        if set(template_fields(template)) != set(spec.prompts.fields):
            raise ValueError(f"{where}: template {template!r} does not use exactly the "
                             f"fields {list(spec.prompts.fields)}")
    if spec.prompts.eval not in spec.prompts.train:
        raise ValueError(f"{where}: the evaluation template must also be a training one")
    TASKS.register(spec.name, spec)
    TASK_NAMES.add(spec.name)  # configs may name it (the config layer imports no task)
    return cls


def get_task(name: str) -> Task:
    """The spec registered as ``name``; unknown names list the registered ones (KeyError)."""
    return TASKS.get(name)


def specs() -> List[Task]:
    """Every registered spec, in registration order."""
    return [TASKS.get(n) for n in TASKS]


def batch_fields(task: str, cross: Sequence[str] = ()) -> Dict[str, Field]:
    """item key -> :class:`Field` of a ``task`` batch whose items also carry the targets of
    the ``cross`` tasks: :data:`BASE_FIELDS`, then each task's own fields (none for a name
    that is not registered: a bare batch of images, e.g. the reading's crops).

    Raises:
        ValueError: two of the tasks declare one item key differently.
    """
    out = {f.item: f for f in BASE_FIELDS}
    for name in (task, *cross):
        for f in get_task(name).fields if name in TASKS else ():
            if f.item in out and out[f.item] != f:
                raise ValueError(f"task '{name}' declares item field '{f.item}' as {f}, "
                                 f"another as {out[f.item]}")
            out[f.item] = f
    return out
