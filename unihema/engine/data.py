"""From config entries to per-(dataset, task) datasets and the training mixture."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from torch.utils.data import DataLoader, Sampler

from unihema.config.schema import Config, DatasetEntry
from unihema.data import vocab
from unihema.data.catalog import DataError, get_adapter
from unihema.data.collate import collate
from unihema.data.mapper import DatasetMapper, TaskDataset
from unihema.data.sample import UnifiedSample
from unihema.data.sampler import MixtureDataset, MixtureSampler, Source

logger = logging.getLogger(__name__)


@dataclass
class TaskSplit:
    """One (dataset entry, task) pair with its samples and its item dataset."""

    entry: DatasetEntry
    task: str
    samples: List[UnifiedSample]
    dataset: TaskDataset

    @property
    def name(self) -> str:
        return f"{self.entry.name}/{self.entry.split}:{self.task}"


_CACHE: Dict[tuple, List[UnifiedSample]] = {}


def load_entry(entry: DatasetEntry, on_error: str) -> List[UnifiedSample]:
    """Samples of one configured dataset split (cached per process: evaluation reloads)."""
    spec = getattr(entry, "spec", "")
    key = (entry.name, entry.root, entry.split, on_error, spec)
    if key not in _CACHE:
        options = {"spec": spec} if spec else {}
        adapter = get_adapter(entry.name, entry.root, on_error=on_error, **options)
        _CACHE[key] = adapter.load(entry.split)
        for p in adapter.problems:
            logger.warning("%s: skipped: %s", entry.name, p)
    return _CACHE[key]


RELABEL_TASKS = ("detect", "classify", "segment")


def relabel(samples: Sequence[UnifiedSample], task: str, classes: Sequence[str],
            source: str = "") -> List[UnifiedSample]:
    """Copies of ``samples`` whose ``task`` labels are mapped onto the coarser ``classes``.

    Each label becomes the first listed class it is a kind of (``vocab.is_a``): with
    ``["red blood cell", "white blood cell"]`` a ``target cell`` box becomes a red blood cell
    and a ``monocyte`` box a white blood cell. The copies carry ``classes`` as their prompt class
    list; other tasks keep the original samples untouched.

    Raises:
        DataError: a label falls under none of ``classes`` (naming the sample and the label).
        ValueError: ``task`` has no class labels to map.
    """
    if task not in RELABEL_TASKS:
        raise ValueError(f"{source}: classes can be given for {RELABEL_TASKS}, not '{task}'")
    classes = [vocab.canonical(c) for c in classes]

    def coarse(label: str, key: str) -> str:
        for c in classes:
            if vocab.is_a(label, c):
                return c
        raise DataError(f"{source}: {key}: label '{label}' is not a kind of any of {classes} "
                        f"(data entry 'classes.{task}')")

    out = []
    for s in samples:
        meta = dict(s.meta, **{f"classes_{task}": list(classes)})
        if task == "detect":
            labels = [coarse(lb, s.key) for lb in (s.box_labels or [])]
            out.append(dataclasses.replace(s, box_labels=labels, meta=meta))
        elif task == "classify":
            out.append(dataclasses.replace(s, label=coarse(s.label, s.key),
                                           label_set=list(classes), meta=meta))
        else:
            values = {v: (n if n == "background" else coarse(n, s.key))
                      for v, n in (s.mask_values or {}).items()}
            out.append(dataclasses.replace(s, mask_values=values, meta=meta))
    return out


def build_task_splits(
    entries: Sequence[DatasetEntry],
    cfg: Config,
    *,
    train: bool,
    tasks: Optional[Sequence[str]] = None,
    seed: int = 0,
) -> List[TaskSplit]:
    """One :class:`TaskSplit` per (entry, task), for tasks both the entry and the model have.

    A task named explicitly by an entry that its samples never supervise is an error.
    """
    mapper = DatasetMapper.from_config(cfg, train=train)
    model_tasks = set(tasks if tasks is not None else cfg.model.tasks)
    out = []
    for entry in entries:
        bad = [t for t in entry.classes if t not in RELABEL_TASKS]
        if bad:
            raise ValueError(f"{entry.name}/{entry.split}: 'classes' given for {bad}; only "
                             f"{list(RELABEL_TASKS)} have class labels to map")
        samples = load_entry(entry, cfg.data.on_error)
        supported = {t for s in samples for t in s.tasks()}
        wanted = entry.tasks or sorted(supported)
        missing = [t for t in entry.tasks if t not in supported]
        if missing:
            raise ValueError(f"{entry.name}/{entry.split}: no sample supervises {missing}; "
                             f"its tasks are {sorted(supported)}")
        for task in wanted:
            if task not in model_tasks:
                continue
            chosen = [s for s in samples if task in s.tasks()]
            if entry.classes.get(task):
                chosen = relabel(chosen, task, entry.classes[task], f"{entry.name}/{entry.split}")
            ds = TaskDataset(chosen, task, mapper, train=train, seed=seed)
            out.append(TaskSplit(entry, task, chosen, ds))
    return out


class StepTaggedSampler(Sampler):
    """Wraps a :class:`MixtureSampler`: yields ``[(source, item, step), ...]`` so each item's
    augmentation is seeded by the step that drew it (see :class:`MixtureDataset`), and keeps the
    sampler state after every batch it produced, so that the state *as of a consumed step* is
    known even when DataLoader workers have prefetched batches beyond it.

    Iterating yields ``sampler.num_batches`` batches from the sampler's current position.
    """

    def __init__(self, sampler: MixtureSampler) -> None:
        self.sampler = sampler
        self._states: Dict[int, dict] = {}

    def __iter__(self) -> Iterator[List[Tuple[int, int, int]]]:
        s = self.sampler
        self._states = {s.step: s.state_dict()}
        for _ in range(len(s)):
            step = s.step
            batch = s.next_batch()
            self._states[s.step] = s.state_dict()
            yield [(src, j, step) for src, j in batch]

    def __len__(self) -> int:
        return len(self.sampler)

    def state_at(self, step: int) -> dict:
        """The sampler state after the batch of ``step - 1`` (i.e. with ``step`` batches
        consumed); older states are forgotten."""
        if step not in self._states:
            raise KeyError(f"no sampler state recorded for step {step} "
                           f"(recorded: {sorted(self._states)[:3]}...)")
        for k in [k for k in self._states if k < step]:
            del self._states[k]
        return self._states[step]


def build_train_loader(cfg: Config, splits: Sequence[TaskSplit], *, max_steps: int,
                       rank: int = 0, world_size: int = 1) -> tuple:
    """A DataLoader of single-task batches drawn by the mixture sampler.

    ``max_steps`` counts batches (micro-batches when gradients are accumulated). Returns
    ``(loader, sampler)``; the sampler carries the position for resuming (set its
    ``num_batches`` to the batches still to draw before iterating a resumed loader), and
    ``loader.batch_sampler.state_at(n)`` gives its state after ``n`` consumed batches.
    """
    sources = [Source(s.name, s.task, len(s.dataset),
                      s.entry.weight * cfg.data.task_weights.get(s.task, 1.0),
                      cfg.data.task_batch_size.get(s.task)) for s in splits]
    sampler = MixtureSampler(sources, cfg.data.batch_size, seed=cfg.train.seed, rank=rank,
                             world_size=world_size, num_batches=max_steps)
    loader = DataLoader(MixtureDataset([s.dataset for s in splits]),
                        batch_sampler=StepTaggedSampler(sampler), collate_fn=collate,
                        num_workers=cfg.data.num_workers,
                        persistent_workers=cfg.data.num_workers > 0)
    return loader, sampler

