"""From config entries to per-(dataset, task) datasets and the training mixture."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from torch.utils.data import DataLoader

from unihema.config.schema import Config, DatasetEntry
from unihema.data.catalog import get_adapter
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
    key = (entry.name, entry.root, entry.split, on_error)
    if key not in _CACHE:
        adapter = get_adapter(entry.name, entry.root, on_error=on_error)
        _CACHE[key] = adapter.load(entry.split)
        for p in adapter.problems:
            logger.warning("%s: skipped: %s", entry.name, p)
    return _CACHE[key]


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
            ds = TaskDataset(chosen, task, mapper, train=train, seed=seed)
            out.append(TaskSplit(entry, task, chosen, ds))
    return out


def build_train_loader(cfg: Config, splits: Sequence[TaskSplit], *, max_steps: int,
                       rank: int = 0, world_size: int = 1) -> tuple:
    """A DataLoader of single-task batches drawn by the mixture sampler.

    Returns ``(loader, sampler)``; the sampler carries the position for resuming.
    """
    sources = [Source(s.name, s.task, len(s.dataset),
                      s.entry.weight * cfg.data.task_weights.get(s.task, 1.0),
                      cfg.data.task_batch_size.get(s.task)) for s in splits]
    sampler = MixtureSampler(sources, cfg.data.batch_size, seed=cfg.train.seed, rank=rank,
                             world_size=world_size, num_batches=max_steps)
    loader = DataLoader(MixtureDataset([s.dataset for s in splits]), batch_sampler=sampler,
                        collate_fn=collate, num_workers=cfg.data.num_workers,
                        persistent_workers=cfg.data.num_workers > 0)
    return loader, sampler

