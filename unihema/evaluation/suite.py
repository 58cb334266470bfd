"""Suite files of ``unihema eval``, and scoring one (model, entry) with the inference loop.

A suite is a YAML file (examples in ``configs/eval/``; unknown keys are errors naming the file
and the key)::

    name: demo                 # reports go to runs/eval/<name> unless --out is given
    image_size: 256            # optional; default: the model's own (checkpoint), else 256
    batch_size: 16             # optional
    limit: null                # optional: at most N items per entry, evenly spread
    entries:
      - {dataset: synthetic_smear, root: runs/demo/data, split: test, task: detect,
         classes: {detect: [red blood cell, white blood cell, platelet, malaria parasite]},
         options: {max_dets: 300}}
      - {dataset: synthetic_smear, root: runs/demo/data, split: test, task: vqa,
         shuffled: true}

Entry keys: ``dataset`` (adapter key), ``root`` (relative paths resolve from the current
directory), ``split`` (default ``test``), ``task``, ``classes`` (per task, a coarser class list,
as in training configs), ``candidates`` (classify / detect: the only classes prompted and scored;
crops and boxes of other classes are left out, so models with different label sets are compared
on the classes they share), ``options`` (keyword arguments of the task's evaluator, e.g.
``restrict_to`` for classify, ``max_dets`` for detect), ``shuffled`` (vqa / mlm: also score with
the images shuffled across questions and report ``<metric>_shuffled`` and ``grounding_gap`` =
metric - shuffled, on ``exact_match`` for vqa and ``token_accuracy`` for mlm), ``limit`` (this
entry's own cap), ``derive_text`` (vqa / mlm on a dataset without text: questions and reports
derived from its annotations, as in training configs), ``spec`` (the generic adapter's
dataset spec) and ``evaluator`` (another registered evaluator of the task instead of its own:
``open_set`` or ``selective`` for classify, :mod:`unihema.evaluation.trust`; an evaluator
with ``prepare_samples`` re-prompts the entry's samples, one with ``bind`` is told the
dataset and the model before the first batch).

This module reads and validates suite files (:func:`load_suite`) and scores one model on one
entry's task split (:func:`score_entry`, through
:func:`unihema.evaluation.runner.run_evaluation`). Loading the models and running a whole suite
(items built by the training data path, reports, plots) is :mod:`unihema.benchmark`; the
command line is :mod:`unihema.cli.eval`.

Training-image overlap: a model trained by unihema carries ``train_images.json`` (the hashes of
its training images, :class:`~unihema.data.duplicates.TrainImages`). For every (model, entry)
the evaluated items whose image is an exact or near duplicate of a training image are counted,
warned about and written to the entry's ``train_overlap`` (:func:`train_overlap`); a model
without the record (older checkpoints, specialist baselines) gets ``"unknown"``, never 0.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from unihema.config.loader import ConfigError, read_yaml
from unihema.data.sample import TASKS
from unihema.tasks import TASKS as TASK_SPECS, get_task, specs
from unihema.evaluation import EVALUATORS
from unihema.evaluation.grounding import gap_metric, grounded_tasks, grounding_metrics

# torch, the evaluators and matplotlib are imported where used: `unihema --help` builds the
# eval command's parser and should not pay for them.

logger = logging.getLogger(__name__)

#: Top-level keys of a suite file, with their meaning.
SUITE_KEYS = {
    "name": "suite name (default: the file name); reports go to runs/eval/<name>",
    "image_size": "longer image side; default: the model's checkpoint setting, else 256",
    "batch_size": "items per batch (default 16)",
    "limit": "evaluate at most N items per entry, evenly spread (null = all)",
    "entries": "list of (dataset, split, task) entries to score",
}
#: Keys of one entry, with their meaning.
ENTRY_KEYS = {
    "dataset": "registered adapter key (see `unihema data list`)",
    "root": "dataset folder; relative paths resolve from the current directory",
    "split": "split to read (default: test)",
    "task": f"one of {', '.join(TASKS)}",
    "classes": "per task, a coarser class list to score on, e.g. {detect: [...]}",
    "candidates": "classify / detect: the only classes to prompt and score (items of other "
                  "classes are left out), e.g. the classes two models share",
    "options": "keyword options of the task's evaluator, e.g. {restrict_to: [...]}",
    "derive_text": "vqa / mlm: questions and reports derived from the annotations "
                   "(docs/data_format.md, 'Text derived from annotations')",
    "shuffled": "vqa / mlm: also score with images shuffled across questions",
    "limit": "this entry's own item cap",
    "spec": "dataset spec YAML of the generic adapter",
    "where": "keep only the items whose metadata matches, e.g. {subset: Dataset 2} (one "
             "acquisition of a dataset that holds several)",
    "evaluator": "another evaluator of the task than its own: open_set or selective "
                 "(classify; docs/evaluation.md)",
}
DEFAULT_IMAGE_SIZE = 256
DEFAULT_BATCH_SIZE = 16
#: best and worst items drawn per gallery
GALLERY_SIZE = 4


# ----------------------------------------------------------------------------- suite file
def evaluator_class(task: str, evaluator: str = "") -> type:
    """The registered evaluator of ``task``, or the one named ``evaluator`` (it must score
    ``task``; importing the evaluators registers them)."""
    from unihema.evaluation import tasks  # noqa: F401

    cls = EVALUATORS.get(evaluator or task)
    if evaluator and getattr(cls, "task", task) != task:
        raise ValueError(f"evaluator '{evaluator}' scores {cls.task} items, not {task}")
    return cls


@dataclass(frozen=True)
class SuiteEntry:
    """One (dataset, split, task) to score; see the module docstring for the keys."""

    dataset: str
    root: str
    task: str
    split: str = "test"
    classes: Dict[str, List[str]] = field(default_factory=dict)
    candidates: Tuple[str, ...] = ()
    derive_text: bool = False
    options: Dict[str, Any] = field(default_factory=dict)
    shuffled: bool = False
    limit: Optional[int] = None
    spec: str = ""
    where: Tuple[Tuple[str, str], ...] = ()
    evaluator: str = ""

    @property
    def selection(self) -> str:
        """The metadata selection as text, ``[subset=Dataset 2]`` (empty without one)."""
        return "".join(f"[{k}={v}]" for k, v in self.where)

    @property
    def label(self) -> str:
        how = f"[{self.evaluator}]" if self.evaluator else ""
        return f"{self.dataset}/{self.split}{self.selection}:{self.task}{how}"


@dataclass(frozen=True)
class Suite:
    """A validated suite file."""

    name: str
    path: Path
    entries: Tuple[SuiteEntry, ...]
    image_size: Optional[int] = None
    batch_size: int = DEFAULT_BATCH_SIZE
    limit: Optional[int] = None


def _evaluator_names() -> List[str]:
    from unihema.evaluation import tasks  # noqa: F401 - registers the evaluators

    return EVALUATORS.names()


def _unknown(where: str, key: str, valid: Dict[str, str]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{where}: unknown key '{key}'{hint}; valid keys: {', '.join(valid)}"


def _int_or_none(value: Any, where: str, low: int, problems: List[str]) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        problems.append(f"{where}: expected an integer >= {low} or null, got {value!r}")
        return None
    return value


def _entry(raw: Any, where: str, problems: List[str]) -> Optional[SuiteEntry]:
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping with keys {', '.join(ENTRY_KEYS)}, got "
                        f"{type(raw).__name__}")
        return None
    n_before = len(problems)
    problems.extend(_unknown(where, k, ENTRY_KEYS) for k in raw if k not in ENTRY_KEYS)
    for key in ("dataset", "root", "task"):
        if not isinstance(raw.get(key), str) or not raw.get(key):
            problems.append(f"{where}: '{key}' is required: {ENTRY_KEYS[key]}")
    task = raw.get("task")
    if isinstance(task, str) and task and task not in TASKS:
        problems.append(f"{where}: unknown task '{task}'; tasks: {', '.join(TASKS)}")
    for key in ("split", "spec"):
        if key in raw and not isinstance(raw[key], str):
            problems.append(f"{where}: '{key}' must be a string, got {raw[key]!r}")
    classes = raw.get("classes") or {}
    if not isinstance(classes, dict) or not all(
            isinstance(v, list) and all(isinstance(c, str) for c in v) for v in classes.values()):
        problems.append(f"{where}: 'classes' must map a task to a list of class names, got "
                        f"{classes!r}")
        classes = {}
    candidates = raw.get("candidates") or []
    if not isinstance(candidates, list) or not all(isinstance(c, str) for c in candidates):
        problems.append(f"{where}: 'candidates' must be a list of class names, got "
                        f"{candidates!r}")
        candidates = []
    elif candidates and task in TASK_SPECS and not get_task(task).takes_candidates:
        takers = " and ".join(t.name for t in specs() if t.takes_candidates)
        problems.append(f"{where}: 'candidates' applies to {takers}, not '{task}'")
    elif len(set(candidates)) != len(candidates):
        problems.append(f"{where}: 'candidates' lists a class twice: {candidates}")
    derive_text = raw.get("derive_text", False)
    if not isinstance(derive_text, bool):
        problems.append(f"{where}: 'derive_text' must be true or false, got {derive_text!r}")
    options = raw.get("options") or {}
    if not isinstance(options, dict):
        problems.append(f"{where}: 'options' must be a mapping of evaluator options, got "
                        f"{options!r}")
        options = {}
    evaluator = raw.get("evaluator", "")
    if not isinstance(evaluator, str):
        problems.append(f"{where}: 'evaluator' must be an evaluator name, got {evaluator!r}")
        evaluator = ""
    elif evaluator and evaluator not in _evaluator_names():
        problems.append(f"{where}: unknown evaluator '{evaluator}'; registered: "
                        f"{', '.join(_evaluator_names())}")
        evaluator = ""
    if isinstance(options, dict) and task in TASKS:
        try:  # the evaluator itself checks its options: unknown names, bad values
            evaluator_class(task, evaluator)(**options)
        except (TypeError, ValueError) as exc:
            problems.append(f"{where}: bad options for the {evaluator or task} evaluator "
                            f"{options}: {exc}")
    shuffled = raw.get("shuffled", False)
    if not isinstance(shuffled, bool):
        problems.append(f"{where}: 'shuffled' must be true or false, got {shuffled!r}")
    elif shuffled and gap_metric(task) is None:
        problems.append(f"{where}: 'shuffled' applies to {' and '.join(grounded_tasks())} only, "
                        f"not '{task}'")
    limit = _int_or_none(raw.get("limit"), f"{where}: limit", 1, problems)
    select = raw.get("where") or {}
    if not isinstance(select, dict) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float)) and not isinstance(v, bool)
            for k, v in select.items()):
        problems.append(f"{where}: 'where' must map metadata keys to values, e.g. "
                        f"{{subset: Dataset 1}}, got {select!r}")
        select = {}
    if len(problems) > n_before:
        return None
    return SuiteEntry(dataset=raw["dataset"], root=raw["root"], task=task,
                      split=raw.get("split", "test"), classes=dict(classes),
                      candidates=tuple(candidates), derive_text=derive_text is True,
                      options=dict(options), shuffled=shuffled,
                      limit=limit, spec=raw.get("spec", ""),
                      where=tuple((k, str(v)) for k, v in select.items()),
                      evaluator=evaluator)


def load_suite(path: Union[str, Path]) -> Suite:
    """Read and validate a suite file.

    Raises:
        ConfigError: every problem found, each naming the file, the entry and the key.
    """
    path = Path(path)
    raw = read_yaml(path)
    problems = [_unknown(str(path), k, SUITE_KEYS) for k in raw if k not in SUITE_KEYS]
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[\w.\-]+", name):
        problems.append(f"{path}: name must be letters, digits, '.', '_' or '-', got {name!r}")
    image_size = _int_or_none(raw.get("image_size"), f"{path}: image_size", 32, problems)
    batch_size = _int_or_none(raw.get("batch_size", DEFAULT_BATCH_SIZE), f"{path}: batch_size",
                              1, problems)
    limit = _int_or_none(raw.get("limit"), f"{path}: limit", 1, problems)
    raw_entries = raw.get("entries")
    entries: List[SuiteEntry] = []
    if not isinstance(raw_entries, list) or not raw_entries:
        problems.append(f"{path}: 'entries' must be a non-empty list of entries with keys "
                        f"{', '.join(ENTRY_KEYS)}")
    else:
        for i, r in enumerate(raw_entries):
            e = _entry(r, f"{path}: entries[{i}]", problems)
            if e is not None:
                entries.append(e)
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in suite {path}:\n  "
                          + "\n  ".join(problems))
    return Suite(name=name, path=path, entries=tuple(entries), image_size=image_size,
                 batch_size=batch_size or DEFAULT_BATCH_SIZE, limit=limit)


def entry_keys(entries: Sequence[SuiteEntry]) -> List[str]:
    """Dataset keys of the reports: the adapter name (with its ``[key=value]`` metadata
    selection, if any), ``<dataset>/<split>`` when two entries of one task share it, and ``#2``,
    ``#3``... when they share the split too."""
    def count(key_of) -> Dict[Tuple[str, str], int]:
        out: Dict[Tuple[str, str], int] = {}
        for e in entries:
            out[(e.task, key_of(e))] = out.get((e.task, key_of(e)), 0) + 1
        return out

    def name(e: SuiteEntry) -> str:  # its metadata selection and evaluator are in its name
        return e.dataset + e.selection + (f"[{e.evaluator}]" if e.evaluator else "")

    by_name = count(name)
    keys = [name(e) if by_name[(e.task, name(e))] == 1 else
            f"{e.dataset}/{e.split}{e.selection}" + (f"[{e.evaluator}]" if e.evaluator else "")
            for e in entries]
    seen: Dict[Tuple[str, str], int] = {}
    out = []
    for e, k in zip(entries, keys):
        seen[(e.task, k)] = seen.get((e.task, k), 0) + 1
        out.append(k if seen[(e.task, k)] == 1 else f"{k}#{seen[(e.task, k)]}")
    return out


# ----------------------------------------------------------------------------- scoring
@dataclass
class EntryResult:
    """What one (model, entry) run leaves: metrics, the evaluator's state (for plots), the
    dataset run (a Subset under a limit), the gallery picks (``None``: no gallery) and the
    number of items scored (fewer than the dataset's under classify's ``restrict_to``)."""

    metrics: Dict[str, float]
    evaluator: Any
    dataset: Any
    picker: Any
    items: int


def score_entry(model: Any, split: Any, entry: SuiteEntry, *, batch_size: int,
                limit: Optional[int], gallery: int = GALLERY_SIZE,
                progress: bool = True) -> EntryResult:
    """Run ``model`` (``name`` and ``predict(batch)``, e.g. a
    :class:`unihema.benchmark.LoadedModel`) over one task split (``dataset``, ``task``,
    ``name``) and keep what reports and plots need."""
    from torch.utils.data import DataLoader

    from unihema.pipeline.collate import collate
    from unihema.evaluation import plots
    from unihema.evaluation.runner import evaluate_split, limited, run_evaluation

    ds = limited(split.dataset, limit)
    evaluator = evaluator_class(entry.task, entry.evaluator)(**entry.options)
    if hasattr(evaluator, "bind"):
        evaluator.bind(ds, model)
    # no gallery for another evaluator: open_set items carry a stand-in label
    picker = (plots.GalleryPicker(gallery) if gallery and entry.task in plots.GALLERY_TASKS
              and not entry.evaluator else None)
    restrict = (set(entry.options.get("restrict_to") or []) if get_task(entry.task).restricts
                else None)
    scored = [0]

    def pick(batch, preds, start) -> None:
        for i, pred in enumerate(preds):
            s = plots.item_score(entry.task, batch, i, pred, entry.options)
            if s is not None:
                picker.add(s, start + i, pred)

    def count(batch, preds, start) -> None:
        scored[0] += len(preds) if not restrict else sum(
            c[int(t)] in restrict for c, t in zip(batch["classes"], batch["labels"]))

    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate)
    hooks = [count] + ([pick] if picker is not None else [])
    (metrics,) = run_evaluation(model, loader, [evaluator], hooks, progress=progress,
                                desc=f"{model.name} {entry.label}")
    metrics = dict(metrics)
    if entry.shuffled and gap_metric(entry.task) in metrics:
        shuffled = evaluate_split(model, split, batch_size=batch_size, limit=limit,
                                  shuffle_images=True, evaluator_options=entry.options,
                                  progress=progress)
        metrics.update(grounding_metrics(entry.task, metrics, shuffled))
    return EntryResult(metrics, evaluator, ds, picker, scored[0])


def item_image_paths(dataset: Any) -> List[str]:
    """The image path of each item of a task dataset (or of a ``Subset`` of one)."""
    from torch.utils.data import Subset

    indices = dataset.indices if isinstance(dataset, Subset) else range(len(dataset))
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    return [base.samples[base.items[i][0]].image_path for i in indices]


def train_overlap(model: Any, res: EntryResult, label: str,
                  cache: Dict[str, Any]) -> Union[Dict[str, int], str]:
    """``{"items", "exact", "near"}``: evaluated items whose image is a copy of one of the
    model's training images (warned about when any), or ``"unknown"`` without the record."""
    if model.train_images is None:
        return "unknown"
    counts = model.train_images.overlap(item_image_paths(res.dataset), cache)
    if counts["exact"] or counts["near"]:
        logger.warning("%s: %d of %d items of %s show training images of the model (%d exact, "
                       "%d near duplicates): those scores are not held out", model.name,
                       counts["exact"] + counts["near"], counts["items"], label,
                       counts["exact"], counts["near"])
    return counts


def gallery_items(res: EntryResult) -> Tuple[list, list]:
    """``(best, worst)`` as ``(score, item dict, prediction)`` for :func:`plots.plot_gallery`;
    items are read again from the (deterministic, evaluation-mode) dataset."""
    if res.picker is None:
        return [], []
    return ([(s, res.dataset[i], p) for s, i, p in res.picker.best()],
            [(s, res.dataset[i], p) for s, i, p in res.picker.worst()])



__all__ = [
    "DEFAULT_BATCH_SIZE", "DEFAULT_IMAGE_SIZE", "ENTRY_KEYS", "GALLERY_SIZE", "SUITE_KEYS",
    "EntryResult", "Suite", "SuiteEntry", "entry_keys", "gallery_items", "item_image_paths",
    "load_suite", "score_entry", "train_overlap",
]
