"""The multi-task mixture: which (dataset, task) each batch comes from, and which items.

Training draws batches from several *sources*, one source per (dataset split, task) pair, with
configured weights. Every batch holds items of a single source, so a batch has one task and one
prompt format and heads never see a half-empty batch.

The sampler is deterministic and resumable: the source of step ``s`` depends only on
``(seed, s)``; the items come from a per-source permutation that is reshuffled each time the
source is exhausted. :meth:`MixtureSampler.state_dict` captures the position exactly.

It is distributed-aware: with ``world_size`` processes, every rank picks the same source at a
step (so the task mix holds per *global* step) and takes a disjoint slice of a global batch of
``batch_size * world_size`` items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch.utils.data


@dataclass(frozen=True)
class Source:
    """One stream of training items: ``size`` items of one task with a sampling ``weight``;
    ``batch_size`` overrides the sampler's (small cell crops afford larger batches).
    ``item_weights`` (``size`` positive numbers): draw items with these relative
    probabilities, with replacement (class-balanced sampling); ``None``: every item once per
    pass, in a fresh random order each pass."""

    name: str
    task: str
    size: int
    weight: float = 1.0
    batch_size: Optional[int] = None
    item_weights: Optional[Tuple[float, ...]] = None


class MixtureSampler(torch.utils.data.Sampler):
    """Batch sampler yielding ``[(source_index, item_index), ...]`` lists of ``batch_size``.

    Args:
        sources: the streams to mix; weights need not sum to one.
        batch_size: items per batch on this rank (unless a source sets its own).
        seed: base seed; two samplers with the same arguments yield the same batches.
        rank, world_size: this process's slot among ``world_size`` data-parallel processes.
        num_batches: length of one pass of ``iter()``; ``None`` = endless.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        num_batches: Optional[int] = None,
    ) -> None:
        if not sources:
            raise ValueError("the mixture has no sources; configure data.train")
        empty = [s.name for s in sources if s.size <= 0]
        if empty:
            raise ValueError(f"mixture sources with no items (check their tasks): {empty}")
        bad = [s.name for s in sources if not (s.weight > 0 and np.isfinite(s.weight))]
        if bad:
            raise ValueError(f"mixture sources need a positive weight: {bad}")
        bad = [s.name for s in sources if s.item_weights is not None and (
            len(s.item_weights) != s.size or not all(w > 0 and np.isfinite(w)
                                                     for w in s.item_weights))]
        if bad:
            raise ValueError(f"mixture sources need one positive item weight per item: {bad}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.sources = list(sources)
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.num_batches = num_batches
        w = np.array([s.weight for s in self.sources], dtype=np.float64)
        self.probs = w / w.sum()
        self.step = 0
        self._cursor = [0] * len(self.sources)
        self._epoch = [0] * len(self.sources)

    # ------------------------------------------------------------------ core
    def _perm(self, i: int) -> np.ndarray:
        """Pass ``self._epoch[i]`` over source ``i``: a permutation, or ``size`` weighted
        draws with replacement when the source has item weights."""
        rng = np.random.default_rng([self.seed, 1 + i, self._epoch[i]])
        src = self.sources[i]
        if src.item_weights is None:
            return rng.permutation(src.size)
        p = np.asarray(src.item_weights, dtype=np.float64)
        return rng.choice(src.size, size=src.size, replace=True, p=p / p.sum())

    def _take(self, i: int, n: int) -> List[int]:
        """Next ``n`` items of source ``i`` (wrapping into a fresh permutation when needed)."""
        out: List[int] = []
        perm = self._perm(i)
        while len(out) < n:
            if self._cursor[i] >= len(perm):
                self._epoch[i] += 1
                self._cursor[i] = 0
                perm = self._perm(i)
            k = min(n - len(out), len(perm) - self._cursor[i])
            out.extend(perm[self._cursor[i]:self._cursor[i] + k].tolist())
            self._cursor[i] += k
        return out

    def next_batch(self) -> List[Tuple[int, int]]:
        """The batch of the current step for this rank; advances the step."""
        rng = np.random.default_rng([self.seed, 0, self.step])
        src = int(rng.choice(len(self.sources), p=self.probs))
        bs = self.sources[src].batch_size or self.batch_size
        global_items = self._take(src, bs * self.world_size)
        mine = global_items[self.rank::self.world_size]
        self.step += 1
        return [(src, j) for j in mine]

    def __iter__(self) -> Iterator[List[Tuple[int, int]]]:
        produced = 0
        while self.num_batches is None or produced < self.num_batches:
            yield self.next_batch()
            produced += 1

    def __len__(self) -> int:
        if self.num_batches is None:
            raise TypeError("an endless MixtureSampler has no length; pass num_batches")
        return self.num_batches

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> Dict[str, Any]:
        return {
            "step": self.step,
            "cursor": list(self._cursor),
            "epoch": list(self._epoch),
            "sources": [s.name for s in self.sources],
            "seed": self.seed,
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        names = [s.name for s in self.sources]
        if state["sources"] != names:
            raise ValueError(
                f"sampler state was saved for sources {state['sources']}, this run has {names}"
            )
        self.step = int(state["step"])
        self._cursor = [int(c) for c in state["cursor"]]
        self._epoch = [int(e) for e in state["epoch"]]

    def task_share(self) -> Dict[str, float]:
        """Expected fraction of batches per task (for logs)."""
        out: Dict[str, float] = {}
        for s, p in zip(self.sources, self.probs):
            out[s.task] = out.get(s.task, 0.0) + float(p)
        return out


class MixtureDataset(torch.utils.data.Dataset):
    """Index ``(source_index, item_index)`` into one of several per-source datasets.

    An index ``(source_index, item_index, epoch)`` first calls ``set_epoch(epoch)`` on that
    dataset (when it has one): the trainer passes the global step there, so an item's
    augmentation randomness is a function of (seed, step, item) alone, whichever worker process
    decodes it.
    """

    def __init__(self, datasets: Sequence[torch.utils.data.Dataset]) -> None:
        self.datasets = list(datasets)

    def __getitem__(self, index: Tuple[int, ...]):
        src, item = index[0], index[1]
        ds = self.datasets[src]
        if len(index) > 2 and hasattr(ds, "set_epoch"):
            ds.set_epoch(index[2])
        return ds[item]

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)  # type: ignore[arg-type]
