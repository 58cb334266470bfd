"""From config entries to per-(dataset, task) datasets and the training mixture."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from torch.utils.data import DataLoader, Dataset, Sampler

from unihema.config.schema import Config, DatasetEntry
from unihema.data import vocab
from unihema.data.text.annotation_text import derive_text
from unihema.data.catalog import DataError, get_adapter
from unihema.pipeline.collate import collate
from unihema.data.duplicates import TrainImages
from unihema.pipeline.mapper import DatasetMapper, TaskDataset, target_side
from unihema.data.sample import UnifiedSample
from unihema.pipeline.sampler import MixtureDataset, MixtureSampler, Source
from unihema.tasks import get_task, specs

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


#: the split name that reads every split of a dataset (unless the adapter has its own 'all')
ALL_SPLITS = "all"


def load_entry(entry: DatasetEntry, on_error: str) -> List[UnifiedSample]:
    """Samples of one configured dataset split, or of all its splits in order for
    ``split: all`` (cached per process: evaluation reloads)."""
    spec = getattr(entry, "spec", "")
    key = (entry.name, entry.root, entry.split, on_error, spec)
    if key not in _CACHE:
        options = {"spec": spec} if spec else {}
        adapter = get_adapter(entry.name, entry.root, on_error=on_error, **options)
        if entry.split == ALL_SPLITS and ALL_SPLITS not in adapter.splits:
            # every image of a source, e.g. to test on a whole dataset never trained on
            _CACHE[key] = [s for split in adapter.splits for s in adapter.load(split)]
        else:
            _CACHE[key] = adapter.load(entry.split)
        for p in adapter.problems:
            logger.warning("%s: skipped: %s", entry.name, p)
    return _CACHE[key]


def record_train_images(splits: Sequence[TaskSplit], *, progress: bool = False) -> TrainImages:
    """sha256 and perceptual hash of every distinct image file the training splits read: the
    run's ``train_images.json``, which ``unihema eval`` compares evaluated images against."""
    paths = [s.image_path for split in splits for s in split.samples]
    sources = sorted({f"{split.entry.name}/{split.entry.split}" for split in splits})
    return TrainImages.from_paths(paths, sources, progress=progress)


def select_where(samples: Sequence[UnifiedSample], where: Dict[str, str], source: str = ""
                 ) -> List[UnifiedSample]:
    """The samples whose ``meta[key]`` equals ``where[key]`` (compared as text) for every key.

    A selection that keeps nothing is an error naming the values the samples do have, so a
    misspelt subset never trains or scores on an empty split.
    """
    kept = [s for s in samples
            if all(str(s.meta.get(k)) == str(v) for k, v in where.items())]
    if not kept and samples:
        seen = {k: sorted({str(s.meta[k]) for s in samples if k in s.meta})[:10] for k in where}
        raise ValueError(f"{source}: where {dict(where)} matches none of its {len(samples)} "
                         f"samples; values present: {seen}")
    logger.info("%s: where %s keeps %d of %d samples", source, dict(where), len(kept),
                len(samples))
    return kept


def tasks_with(capability: str) -> Tuple[str, ...]:
    """The registered tasks whose spec has ``capability`` (an attribute of
    :class:`~unihema.tasks.Task`: ``relabels``, ``takes_candidates``, ``trunk``,
    ``balance``), in registration order."""
    return tuple(t.name for t in specs() if getattr(t, capability))


def kind_of(label: str, classes: Sequence[str]) -> Optional[str]:
    """The first of ``classes`` that ``label`` is a kind of (``vocab.is_a``), or None."""
    return next((c for c in classes if vocab.is_a(label, c)), None)


def relabel(samples: Sequence[UnifiedSample], task: str, classes: Sequence[str],
            source: str = "") -> List[UnifiedSample]:
    """Copies of ``samples`` whose ``task`` labels are mapped onto the coarser ``classes``.

    Each label becomes the first listed class it is a kind of (``vocab.is_a``): with
    ``["red blood cell", "white blood cell"]`` a ``target cell`` box becomes a red blood cell
    and a ``monocyte`` box a white blood cell. The copies carry ``classes`` as their prompt class
    list; other tasks keep the original samples untouched. The task's spec maps its labels
    (:meth:`~unihema.tasks.Task.relabel`).

    Raises:
        DataError: a label falls under none of ``classes`` (naming the sample and the label).
        ValueError: ``task`` has no class labels to map.
    """
    if task not in tasks_with("relabels"):
        raise ValueError(f"{source}: classes can be given for {tasks_with('relabels')}, not "
                         f"'{task}'")
    spec = get_task(task)
    classes = [vocab.canonical(c) for c in classes]

    def coarse(label: str, key: str) -> str:
        found = kind_of(label, classes)
        if found is not None:
            return found
        raise DataError(f"{source}: {key}: label '{label}' is not a kind of any of {classes} "
                        f"(data entry 'classes.{task}')")

    out = []
    for s in samples:
        meta = dict(s.meta, **{f"classes_{task}": list(classes)})
        out.append(spec.relabel(s, lambda label, key=s.key: coarse(label, key), classes, meta))
    return out


def restrict_to_candidates(samples: Sequence[UnifiedSample], task: str,
                           candidates: Sequence[str], source: str = ""
                           ) -> Tuple[List[UnifiedSample], int]:
    """Copies of ``samples`` that prompt and score only ``candidates``.

    A label that is a kind of a candidate (``vocab.is_a``) becomes that candidate; a classify
    sample whose label is under none of them is left out, and so is such a box of a detect
    sample (the field itself is kept): the spec's :meth:`~unihema.tasks.Task.restrict`. A
    candidate written ``-name`` is an exclusion: a label that is a kind of it is left out first
    (``[lymphocyte, -atypical lymphocyte]`` keeps the plain lymphocytes only).
    Returns ``(samples, n_left_out)``: crops or boxes left out, which the caller reports.

    Raises:
        ValueError: ``task`` takes no candidates, or a candidate repeats.
    """
    allowed = tasks_with("takes_candidates")
    if task not in allowed:
        raise ValueError(f"{source}: candidates can be given for {list(allowed)}, not "
                         f"'{task}'")
    excluded = [vocab.canonical(c[1:].strip()) for c in candidates if c.startswith("-")]
    names = [vocab.canonical(c) for c in candidates if not c.startswith("-")]
    if len(set(names)) != len(names) or not names:
        raise ValueError(f"{source}: candidates.{task} must list distinct class names, got "
                         f"{list(candidates)}")

    spec = get_task(task)
    out, left_out = [], 0
    for s in samples:
        meta = dict(s.meta, **{f"classes_{task}": list(names)})
        kept, left = spec.restrict(
            s, lambda label: None if kind_of(label, excluded) else kind_of(label, names),
            names, meta)
        left_out += left
        if kept is not None:
            out.append(kept)
    return out, left_out


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
    candidate_tasks, relabel_tasks = tasks_with("takes_candidates"), tasks_with("relabels")
    for entry in entries:
        bad_candidates = [t for t in entry.candidates if t not in candidate_tasks]
        if bad_candidates:
            raise ValueError(f"{entry.name}/{entry.split}: 'candidates' given for "
                             f"{bad_candidates}; only {list(candidate_tasks)} take them")
        bad = [t for t in entry.classes if t not in relabel_tasks]
        if bad:
            raise ValueError(f"{entry.name}/{entry.split}: 'classes' given for {bad}; only "
                             f"{list(relabel_tasks)} have class labels to map")
        samples = load_entry(entry, cfg.data.on_error)
        if entry.where:
            samples = select_where(samples, entry.where, f"{entry.name}/{entry.split}")
        if entry.derive_text:
            box_classes = sorted({lb for s in samples for lb in s.box_labels or []})
            samples = [derive_text(s, box_classes) for s in samples]
        supported = {t.name for t in specs() if any(t.supervises(s) for s in samples)}
        wanted = entry.tasks or sorted(supported)
        missing = [t for t in entry.tasks if t not in supported]
        if missing:
            raise ValueError(f"{entry.name}/{entry.split}: no sample supervises {missing}; "
                             f"its tasks are {sorted(supported)}")
        for task in wanted:
            if task not in model_tasks:
                continue
            chosen = [s for s in samples if get_task(task).supervises(s)]
            if entry.classes.get(task):
                chosen = relabel(chosen, task, entry.classes[task], f"{entry.name}/{entry.split}")
            if entry.candidates.get(task):
                n_in = len(chosen)
                chosen, left = restrict_to_candidates(chosen, task, entry.candidates[task],
                                                      f"{entry.name}/{entry.split}")
                logger.info("%s/%s %s: candidates %s keep %d of %d samples (%d %s left out)",
                            entry.name, entry.split, task, entry.candidates[task], len(chosen),
                            n_in, left, get_task(task).candidate_unit)
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


class ItemSubset(Dataset):
    """Some items of a :class:`TaskDataset`, forwarding ``set_epoch`` (item ``j`` of the subset
    is item ``indices[j]`` of the dataset, with that item's own randomness)."""

    def __init__(self, dataset: TaskDataset, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = list(indices)

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int):
        return self.dataset[self.indices[j]]


def size_buckets(split: TaskSplit, cfg: Config) -> List[Tuple[int, List[int]]]:
    """The items of ``split`` grouped by the size the mapper gives their images.

    An image keeps its longer side up to ``data.image_size`` (unless ``data.upscale``), so the
    96-pixel cell crops and 256-pixel fields of one task (VQA, MLM) come out at different sizes,
    and a batch mixing them pads every crop to a field. Returns ``[(side, item indices)]``,
    largest first, where ``side`` is the padded side of the bucket: the next power of two at or
    above the image side, capped at ``image_size``; samples without a recorded size count as
    full-size.
    """
    size = cfg.data.image_size
    groups: Dict[int, List[int]] = {}
    for j, (sample_index, _) in enumerate(split.dataset.items):
        side = target_side(split.dataset.samples[sample_index], size, cfg.data.upscale,
                           cfg.data.crop_size)
        key = min(size, 1 << max(0, int(side - 1).bit_length()))
        groups.setdefault(key, []).append(j)
    return sorted(groups.items(), reverse=True)


def mixture_sources(cfg: Config, splits: Sequence[TaskSplit]) -> Tuple[List[Source], List]:
    """The mixture's sources and their datasets: one per (split, size bucket).

    A split whose images all come out at one size is one source with weight
    ``entry.weight * data.task_weights[task]`` and batch ``data.task_batch_size[task]`` (or
    ``data.batch_size``). A split with several sizes (:func:`size_buckets`) becomes one source
    per size: a bucket of smaller images gets a larger batch, ``(largest side / its side)^2``
    times the split's (at most 4x, the same pixels per batch), and the split's weight is
    shared so that every item is still drawn equally often and the task keeps its share of the
    steps.

    With ``data.trunk_items[task] = k`` every batch of the task draws ``k`` items more, the
    trunk-only items at its end (:func:`check_trunk_items`; the trainer's
    :class:`~unihema.engine.objectives.TrunkSupervision` splits them off).

    With ``data.balance[task] = p`` the split's items get the weights of
    :func:`balance_weights` (normalised to mean 1): every label is drawn about equally often at
    ``p = 1``, and the size buckets share the split's weight by their items' total weight.
    """
    extra = check_trunk_items(cfg)
    sources, datasets = [], []
    for s in splits:
        weight = s.entry.weight * cfg.data.task_weights.get(s.task, 1.0)
        batch = cfg.data.task_batch_size.get(s.task) or cfg.data.batch_size
        trunk = extra.get(s.task, 0)
        power = cfg.data.balance.get(s.task, 0.0)
        item_w = balance_weights(s, power) if power else None
        buckets = size_buckets(s, cfg)
        if len(buckets) == 1:
            sources.append(Source(s.name, s.task, len(s.dataset), weight,
                                  batch + trunk if trunk else cfg.data.task_batch_size.get(s.task),
                                  None if item_w is None else tuple(item_w)))
            datasets.append(s.dataset)
            continue
        largest = buckets[0][0]
        sizes = [batch * min(4, max(1, round((largest / side) ** 2))) for side, _ in buckets]
        mass = [len(items) if item_w is None else sum(item_w[j] for j in items)
                for _, items in buckets]
        rates = [m / b for m, b in zip(mass, sizes)]
        for (side, items), b, r in zip(buckets, sizes, rates):
            sources.append(Source(f"{s.name}@{side}px", s.task, len(items),
                                  weight * r / sum(rates), b + trunk,
                                  None if item_w is None else tuple(item_w[j] for j in items)))
            datasets.append(ItemSubset(s.dataset, items))
    return sources, datasets


def check_trunk_items(cfg: Config) -> Dict[str, int]:
    """``data.trunk_items`` validated: ``{task: k}`` for tasks whose heads read only the
    global embedding (spec ``trunk``), so that trunk-only items (pooled trunk features, no
    fusion) can be scored by them; zeros dropped (the config schema keeps ``k`` a count in
    range).

    Raises:
        ValueError: another task (naming the entry).
    """
    out = {}
    trunk_tasks = tasks_with("trunk")
    for task, k in cfg.data.trunk_items.items():
        if task not in trunk_tasks:
            raise ValueError(f"data.trunk_items.{task}: trunk-only items are scored from the "
                             f"pooled trunk features by a head over the global embedding; "
                             f"only {list(trunk_tasks)} have one")
        if k:
            out[task] = int(k)
    return out


def balance_weights(split: TaskSplit, power: float) -> List[float]:
    """Class-balanced sampling weights of ``split``'s items: ``n_label ** -power`` with
    ``n_label`` the number of the split's items sharing the item's label, scaled to mean 1
    (so a label's share of the draws goes from ``n_label / N`` at ``power = 0`` to ``1 / L``
    at ``power = 1``, ``L`` labels; the config schema keeps ``power`` in [0, 1]).

    Raises:
        ValueError: a task whose items do not carry one label each (spec ``balance``), or an
            item without a label (naming the sample).
    """
    where = f"data.balance.{split.task}"
    balance_tasks = tasks_with("balance")
    if split.task not in balance_tasks:
        raise ValueError(f"{where}: class-balanced sampling needs one label per item; "
                         f"'{split.task}' items have none (tasks: {list(balance_tasks)})")
    ds = split.dataset
    labels = []
    for sample_index, _ in ds.items:
        sample = ds.samples[sample_index]
        if not sample.label:
            raise ValueError(f"{where}: sample '{sample.key}' of {split.name} has no label, "
                             f"so it cannot be balanced; label every item or drop the setting")
        labels.append(sample.label)
    counts = Counter(labels)
    raw = [counts[lb] ** -power for lb in labels]
    mean = sum(raw) / len(raw)
    stored = [100 * n / len(labels) for n in counts.values()]
    mass = [n ** (1 - power) for n in counts.values()]  # a label's total weight
    drawn = [100 * m / sum(mass) for m in mass]
    logger.info("%s: class-balanced sampling (power %g), %d labels: each label %.1f-%.1f %% "
                "of the items, %.1f-%.1f %% of the draws", split.name, power, len(counts),
                min(stored), max(stored), min(drawn), max(drawn))
    return [w / mean for w in raw]


def build_train_loader(cfg: Config, splits: Sequence[TaskSplit], *, max_steps: int,
                       rank: int = 0, world_size: int = 1) -> tuple:
    """A DataLoader of single-task batches drawn by the mixture sampler.

    ``max_steps`` counts batches (micro-batches when gradients are accumulated). Sources are
    those of :func:`mixture_sources` (a task whose images come in several sizes draws batches
    of one size at a time). Returns ``(loader, sampler)``; the sampler carries the position for
    resuming (set its ``num_batches`` to the batches still to draw before iterating a resumed
    loader), and ``loader.batch_sampler.state_at(n)`` gives its state after ``n`` consumed
    batches.
    """
    sources, datasets = mixture_sources(cfg, splits)
    sampler = MixtureSampler(sources, cfg.data.batch_size, seed=cfg.train.seed, rank=rank,
                             world_size=world_size, num_batches=max_steps)
    loader = DataLoader(MixtureDataset(datasets),
                        batch_sampler=StepTaggedSampler(sampler), collate_fn=collate,
                        num_workers=cfg.data.num_workers,
                        persistent_workers=cfg.data.num_workers > 0)
    return loader, sampler
