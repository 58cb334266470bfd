"""``unihema eval``: score one or more models on a suite of (dataset, split, task) entries.

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
derived from its annotations, as in training configs) and ``spec`` (the generic adapter's
dataset spec).

Items come from the same path as training and the demo: a :class:`DatasetEntry` and
:func:`~unihema.engine.data.build_task_splits` with ``train=False`` (resizing, prompts,
relabelling), so the numbers match ``unihema demo``'s.

Models (:func:`load_model`): a checkpoint folder (``config.json`` + ``model.safetensors``), a run
folder holding ``model/`` (e.g. ``runs/demo``) or a specialist baseline folder (with
``baseline.json``; loaded by ``unihema.baselines.load_baseline``). An entry whose task a model
lacks is skipped for that model (a logged note, ``—`` in the tables); a model that supports no
entry at all is an error.

Outputs (:func:`run_suite`, all written atomically): ``results.json``, ``results.md`` (formats
in :mod:`unihema.evaluation.report`) and ``plots/<model>/*.png``
(:mod:`unihema.evaluation.plots`).

Training-image overlap: a model trained by unihema carries ``train_images.json`` (the hashes of
its training images, :class:`~unihema.data.duplicates.TrainImages`). For every (model, entry)
the evaluated items whose image is an exact or near duplicate of a training image are counted,
warned about and written to the entry's ``train_overlap``; a model without the record (older
checkpoints, specialist baselines) gets ``"unknown"``, never 0.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm import tqdm

from unihema.config.loader import ConfigError, read_yaml
from unihema.data.sample import TASKS
from unihema.evaluation import EVALUATORS, report
from unihema.utils import slug

# torch, the evaluators and matplotlib are imported where used: `unihema --help` builds this
# command's parser and should not pay for them.

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
}
#: The metric whose drop under shuffled images is the grounding gap.
GAP_METRIC = {"vqa": "exact_match", "mlm": "token_accuracy"}
DEFAULT_IMAGE_SIZE = 256
DEFAULT_BATCH_SIZE = 16
#: best and worst items drawn per gallery
GALLERY_SIZE = 4


# ----------------------------------------------------------------------------- suite file
def evaluator_class(task: str) -> type:
    """The registered evaluator of ``task`` (importing the evaluators registers them)."""
    from unihema.evaluation import tasks  # noqa: F401

    return EVALUATORS.get(task)


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

    @property
    def selection(self) -> str:
        """The metadata selection as text, ``[subset=Dataset 2]`` (empty without one)."""
        return "".join(f"[{k}={v}]" for k, v in self.where)

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.split}{self.selection}:{self.task}"


@dataclass(frozen=True)
class Suite:
    """A validated suite file."""

    name: str
    path: Path
    entries: Tuple[SuiteEntry, ...]
    image_size: Optional[int] = None
    batch_size: int = DEFAULT_BATCH_SIZE
    limit: Optional[int] = None


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
    elif candidates and task not in ("classify", "detect"):
        problems.append(f"{where}: 'candidates' applies to classify and detect, not '{task}'")
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
    elif task in TASKS:
        try:  # the evaluator itself checks its options: unknown names, bad values
            evaluator_class(task)(**options)
        except (TypeError, ValueError) as exc:
            problems.append(f"{where}: bad options for the {task} evaluator {options}: {exc}")
    shuffled = raw.get("shuffled", False)
    if not isinstance(shuffled, bool):
        problems.append(f"{where}: 'shuffled' must be true or false, got {shuffled!r}")
    elif shuffled and task not in GAP_METRIC:
        problems.append(f"{where}: 'shuffled' applies to {' and '.join(GAP_METRIC)} only, not "
                        f"'{task}'")
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
                      where=tuple((k, str(v)) for k, v in select.items()))


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

    def name(e: SuiteEntry) -> str:  # an entry's metadata selection is part of its name
        return e.dataset + e.selection

    by_name = count(name)
    keys = [name(e) if by_name[(e.task, name(e))] == 1 else f"{e.dataset}/{e.split}{e.selection}"
            for e in entries]
    seen: Dict[Tuple[str, str], int] = {}
    out = []
    for e, k in zip(entries, keys):
        seen[(e.task, k)] = seen.get((e.task, k), 0) + 1
        out.append(k if seen[(e.task, k)] == 1 else f"{k}#{seen[(e.task, k)]}")
    return out


# ----------------------------------------------------------------------------- models
@dataclass
class LoadedModel:
    """A model ready for scoring: ``predict(batch) -> list[dict]`` (formats in
    :mod:`unihema.evaluation`), its tasks and the image size it expects (``None``: unknown)."""

    name: str
    path: Path
    kind: str
    model: Any
    tasks: List[str]
    image_size: Optional[int] = None
    upscale: bool = False
    #: longer side the model's single-cell crops were resized to (0: native size)
    crop_size: int = 0
    device: str = "cpu"
    #: hashes of the model's training images (``train_images.json``); None: unknown
    train_images: Any = None

    def predict(self, batch: Dict[str, Any]) -> List[Dict[str, Any]]:
        import torch

        if self.device != "cpu":
            from unihema.engine.utils import to_device

            batch = to_device(batch, torch.device(self.device))
        with torch.no_grad():
            return _to_cpu(self.model.predict(batch))


def _to_cpu(obj: Any) -> Any:
    import torch

    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _run_image_size(run_dir: Path) -> Optional[int]:
    cfg = run_dir / "config.yaml"
    if not cfg.is_file():
        return None
    size = (read_yaml(cfg).get("data") or {}).get("image_size")
    return int(size) if isinstance(size, int) else None


def load_model(path: Union[str, Path], *, name: Optional[str] = None,
               device: str = "cpu", reading: str = "model") -> LoadedModel:
    """Load a checkpoint folder, a run folder holding ``model/`` or a baseline folder.

    The image size is the checkpoint's ``image_size`` (saved by the trainer), else the run
    folder's ``config.yaml`` ``data.image_size``, else ``None`` (the suite or 256 decides).
    ``reading``: what a unihema model's text tasks read, ``"model"`` (its own heads) or
    ``"truth"`` (the annotations; docs/model.md, "The reading").

    Raises:
        FileNotFoundError: ``path`` is none of the three layouts (says what was looked for).
    """
    from unihema.data.duplicates import TRAIN_IMAGES, TrainImages, find_train_images

    given = Path(path)
    name = name or given.resolve().name
    folder, run_dir = given, None
    if not (given / "config.json").is_file() and not (given / "baseline.json").is_file():
        if (given / "model").is_dir():
            folder, run_dir = given / "model", given
    record = find_train_images(folder, run_dir)
    train_images = TrainImages.read(record) if record is not None else None
    if record is None and ((folder / "config.json").is_file()
                           or (folder / "baseline.json").is_file()):
        logger.warning("%s: no %s beside the model (an older checkpoint or a specialist): "
                       "how many evaluated images it saw in training is unknown", name,
                       TRAIN_IMAGES)
    if (folder / "baseline.json").is_file():
        from unihema.baselines import load_baseline  # written separately; only baselines need it

        model = load_baseline(folder)
        if device != "cpu" and hasattr(model, "to"):
            model.to(device)
        size = getattr(model, "image_size", None)
        return LoadedModel(name=name, path=given, kind="baseline", model=model,
                           tasks=list(model.tasks), image_size=int(size) if size else None,
                           upscale=bool(getattr(model, "upscale", False)),
                           crop_size=_baseline_crop_size(folder),
                           device=device if hasattr(model, "to") else "cpu",
                           train_images=train_images)
    if (folder / "config.json").is_file():
        from unihema.modeling.model import UniHema

        model = UniHema.from_pretrained(folder).eval()
        if reading not in ("model", "truth"):
            raise ValueError(f"reading must be 'model' or 'truth', got '{reading}'")
        model.reading_source = reading
        if device != "cpu":
            model.to(device)
        meta = getattr(model, "checkpoint_meta", {}) or {}
        size = meta.get("image_size") or (_run_image_size(run_dir) if run_dir else None)
        return LoadedModel(name=name, path=given, kind="unihema", model=model,
                           tasks=list(model.config.tasks),
                           image_size=int(size) if size else None,
                           upscale=bool(meta.get("upscale", False)),
                           crop_size=int(meta.get("crop_size", 0) or 0), device=device,
                           train_images=train_images)
    raise FileNotFoundError(
        f"'{given}' is not a model folder: expected a unihema checkpoint (config.json + "
        f"model.safetensors), a run folder holding model/ (e.g. runs/demo) or a baseline "
        f"folder (baseline.json)")


def model_names(paths: Sequence[Union[str, Path]]) -> List[str]:
    """Report names: each folder's name (the run folder's for a checkpoint folder called
    ``model``, as in ``runs/demo/model``); ``<parent>/<name>`` where names collide, then
    ``#2``, ``#3``... if they still do."""
    resolved = [Path(p).resolve() for p in paths]
    resolved = [p.parent if p.name == "model" and p.parent.name else p for p in resolved]
    names = [p.name for p in resolved]
    names = [f"{p.parent.name}/{p.name}" if names.count(n) > 1 else n
             for p, n in zip(resolved, names)]
    out: List[str] = []
    for n in names:
        if n == "meta":  # the reserved top-level key of results.json
            n = "meta_model"
        k, base = 2, n
        while n in out:
            n, k = f"{base}#{k}", k + 1
        out.append(n)
    return out


# ----------------------------------------------------------------------------- scoring
def subset_indices(n: int, limit: Optional[int]) -> Optional[List[int]]:
    """Evenly spread item indices when ``limit < n`` (the runner's rule), else ``None``."""
    if limit is None or limit >= n:
        return None
    return np.linspace(0, n - 1, limit).round().astype(int).tolist()


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


def score_entry(model: LoadedModel, split, entry: SuiteEntry, *, batch_size: int,
                limit: Optional[int], gallery: int = GALLERY_SIZE,
                progress: bool = True) -> EntryResult:
    """Run ``model`` over one task split and keep what reports and plots need."""
    from torch.utils.data import DataLoader, Subset

    from unihema.data.collate import collate
    from unihema.evaluation import plots
    from unihema.evaluation.runner import evaluate_split

    ds = split.dataset
    idx = subset_indices(len(ds), limit)
    if idx is not None:
        ds = Subset(ds, idx)
    evaluator = evaluator_class(entry.task)(**entry.options)
    evaluator.reset()
    picker = (plots.GalleryPicker(gallery) if gallery and entry.task in plots.GALLERY_TASKS
              else None)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate)
    restrict = set(entry.options.get("restrict_to") or []) if entry.task == "classify" else None
    seen = scored = 0
    for batch in tqdm(loader, desc=f"{model.name} {entry.label}", disable=not progress,
                      leave=False):
        preds = model.predict(batch)
        evaluator.process(batch, preds)
        if picker is not None:
            for i, pred in enumerate(preds):
                s = plots.item_score(entry.task, batch, i, pred, entry.options)
                if s is not None:
                    picker.add(s, seen + i, pred)
        seen += len(preds)
        scored += len(preds) if not restrict else sum(
            c[int(t)] in restrict for c, t in zip(batch["classes"], batch["labels"]))
    metrics = dict(evaluator.evaluate())
    key = GAP_METRIC.get(entry.task)
    if entry.shuffled and key in metrics:
        shuffled = evaluate_split(model, split, batch_size=batch_size, limit=limit,
                                  shuffle_images=True, evaluator_options=entry.options,
                                  progress=progress)
        metrics[f"{key}_shuffled"] = shuffled[key]
        metrics["grounding_gap"] = metrics[key] - shuffled[key]
    return EntryResult(metrics, evaluator, ds, picker, scored)


def item_image_paths(dataset: Any) -> List[str]:
    """The image path of each item of a task dataset (or of a ``Subset`` of one)."""
    from torch.utils.data import Subset

    indices = dataset.indices if isinstance(dataset, Subset) else range(len(dataset))
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    return [base.samples[base.items[i][0]].image_path for i in indices]


def train_overlap(model: LoadedModel, res: EntryResult, label: str,
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


def _baseline_crop_size(folder: Path) -> int:
    """``data.crop_size`` a specialist was trained with (its ``baseline.json``), 0 if none."""
    try:
        train = json.loads((folder / "baseline.json").read_text()).get("train") or {}
    except (OSError, ValueError, AttributeError):
        return 0
    return int(train.get("crop_size", 0) or 0)


def _splits_for(entry: SuiteEntry, image_size: int, upscale: bool, crop_size: int = 0):
    from unihema.config.schema import Config, DatasetEntry
    from unihema.engine.data import build_task_splits

    cfg = Config()
    cfg.data.image_size = image_size
    cfg.data.upscale = upscale
    cfg.data.crop_size = crop_size
    de = DatasetEntry(name=entry.dataset, root=entry.root, split=entry.split, spec=entry.spec,
                      tasks=[entry.task], classes=dict(entry.classes),
                      candidates={entry.task: list(entry.candidates)} if entry.candidates else {},
                      derive_text=entry.derive_text, where=dict(entry.where))
    splits = build_task_splits([de], cfg, train=False, tasks=[entry.task])
    if len(splits) != 1:
        raise ValueError(f"{entry.label}: expected one task split, got {len(splits)}")
    return splits[0]


# ----------------------------------------------------------------------------- the run
def run_suite(
    suite_path: Union[str, Path],
    model_paths: Sequence[Union[str, Path]],
    out_dir: Optional[Union[str, Path]] = None,
    progress: bool = True,
    *,
    limit: Optional[int] = None,
    plots: bool = True,
    gallery: int = GALLERY_SIZE,
    device: str = "cpu",
    reading: str = "model",
) -> Dict[str, Any]:
    """Score every model on every entry of the suite and write the reports.

    Args:
        suite_path: suite YAML (see the module docstring).
        model_paths: checkpoint, run or baseline folders (:func:`load_model`).
        out_dir: report folder (default ``runs/eval/<suite name>``).
        progress: progress bars over entries and batches, and the final console tables.
        limit: at most this many items per entry (replaces the suite's ``limit``; an entry's
            own ``limit`` still caps it).
        plots: write the PNGs (``False``: only ``results.json`` and ``results.md``).
        gallery: best and worst items per gallery (0 = no gallery).
        device: ``"cpu"`` or a torch device (``"cuda"``) to run the models on.
        reading: ``"model"`` or ``"truth"``: what the text tasks read (:func:`load_model`).

    Returns:
        The ``results.json`` object (:mod:`unihema.evaluation.report`).

    Raises:
        ConfigError: invalid suite file. FileNotFoundError: a dataset root or model folder is
        missing. ValueError: a model supports none of the suite's tasks.
    """
    from unihema import __version__
    from unihema.evaluation.plots import evaluator_plots

    t_start = time.perf_counter()
    suite = load_suite(suite_path)
    if not model_paths:
        raise ValueError("give at least one model folder (--model DIR)")
    for i, e in enumerate(suite.entries):
        if not Path(e.root).exists():
            raise FileNotFoundError(
                f"{suite.path}: entries[{i}] ({e.label}): root '{e.root}' does not exist "
                f"(relative roots resolve from the current directory, {Path.cwd()})")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    limit = limit if limit is not None else suite.limit
    out = Path(out_dir) if out_dir is not None else Path("runs") / "eval" / suite.name
    names = model_names(model_paths)
    models = [load_model(p, name=n, device=device, reading=reading)
              for p, n in zip(model_paths, names)]
    wanted = sorted({e.task for e in suite.entries})
    for m in models:
        if not set(m.tasks) & set(wanted):
            raise ValueError(f"model '{m.name}' ({m.path}) has tasks {m.tasks}; the suite "
                             f"{suite.path} scores {wanted}: nothing to evaluate")

    keys = entry_keys(suite.entries)
    entries_meta: List[Dict[str, Any]] = [
        {"key": k, "dataset": e.dataset, "split": e.split, "root": e.root, "task": e.task,
         "items": None, "shuffled": e.shuffled, "options": e.options,
         **({"classes": e.classes} if e.classes else {}),
         **({"candidates": list(e.candidates)} if e.candidates else {}),
         **({"derive_text": True} if e.derive_text else {}),
         **({"where": dict(e.where)} if e.where else {})}
        for k, e in zip(keys, suite.entries)]
    per_model: Dict[str, Dict[str, Dict[str, Dict[str, float]]]] = {m.name: {} for m in models}
    skipped: List[Dict[str, str]] = []
    plot_files: Dict[str, Dict[str, Dict[str, Dict[str, str]]]] = {}
    seconds: Dict[str, float] = {}
    splits: Dict[Tuple[int, int, bool], Any] = {}
    hashes: Dict[str, Any] = {}  # image path -> hashes, shared by the models
    for m in models:
        t0 = time.perf_counter()
        size = suite.image_size or m.image_size or DEFAULT_IMAGE_SIZE
        for i, (key, e) in enumerate(tqdm(list(zip(keys, suite.entries)), desc=m.name,
                                          disable=not progress)):
            if e.task not in m.tasks:
                logger.info("%s: skipping %s (the model has no '%s' task)", m.name, e.label,
                            e.task)
                skipped.append({"model": m.name, "task": e.task, "dataset": key,
                                "reason": f"the model has no '{e.task}' task"})
                continue
            how = (i, size, m.upscale, m.crop_size)
            if how not in splits:
                splits[how] = _splits_for(e, size, m.upscale, m.crop_size)
            split = splits[how]
            cap = min([c for c in (limit, e.limit) if c is not None], default=None)
            try:
                res = score_entry(m, split, e, batch_size=suite.batch_size, limit=cap,
                                  gallery=gallery if plots else 0, progress=progress)
            except ValueError as exc:
                if type(exc).__name__ != "UnknownClassError":  # unihema.baselines.models
                    raise
                # a specialist prompted with classes it was never trained on: say so and go
                # on with the other entries (`candidates` scores it on the classes it knows)
                logger.warning("%s: skipping %s: %s", m.name, e.label, exc)
                skipped.append({"model": m.name, "task": e.task, "dataset": key,
                                "reason": f"{exc} (give the entry 'candidates' to score it "
                                          f"on the classes it knows)"})
                continue
            entries_meta[i]["items"] = res.items
            entries_meta[i].setdefault("train_overlap", {})[m.name] = train_overlap(
                m, res, e.label, hashes)
            per_model[m.name].setdefault(e.task, {})[key] = res.metrics
            if plots:
                stem = slug(f"{e.task}-{key}")
                title = f"{m.name} — {e.task} — {e.dataset}/{e.split}"
                try:
                    best, worst = gallery_items(res)
                    files = evaluator_plots(e.task, res.evaluator, res.metrics,
                                            out / "plots" / slug(m.name), stem, title,
                                            best=best, worst=worst, options=e.options)
                except Exception:  # a broken plot must not lose the numbers of a long run
                    logger.exception("%s: plots of %s failed", m.name, e.label)
                    files = {}
                plot_files.setdefault(m.name, {}).setdefault(e.task, {})[key] = {
                    k: p.relative_to(out).as_posix() for k, p in files.items()}
        seconds[m.name] = round(time.perf_counter() - t0, 2)

    meta = {
        "suite": suite.name, "suite_file": str(suite.path), "unihema_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "limit": limit, "image_size": suite.image_size, "batch_size": suite.batch_size,
        "seconds": {"total": round(time.perf_counter() - t_start, 2), "models": seconds},
        "models": {m.name: {"path": str(m.path), "kind": m.kind, "tasks": m.tasks,
                            "image_size": suite.image_size or m.image_size
                            or DEFAULT_IMAGE_SIZE} for m in models},
        "entries": entries_meta, "skipped": skipped, "plots": plot_files,
    }
    results = report.nest(per_model, meta)
    report.write_results(out, results, per_model)
    if progress:
        print()
        print(report.console_tables(per_model, entries_meta))
        print(f"wrote {out / 'results.md'} and {out / 'results.json'}"
              + (f" (+ plots in {out / 'plots'})" if plots and plot_files else ""))
    return results


# ----------------------------------------------------------------------------- command line
def cmd_eval(args: argparse.Namespace) -> int:
    results = run_suite(args.suite, args.model, args.out, progress=not args.no_progress,
                        limit=args.limit, plots=not args.no_plots, gallery=args.gallery,
                        device=args.device, reading=args.reading)
    if args.no_progress:  # run_suite printed the tables itself otherwise
        meta = results["meta"]
        per_model = {n: results[n] for n in meta["models"]} if len(meta["models"]) > 1 else {
            next(iter(meta["models"])): {k: v for k, v in results.items() if k != "meta"}}
        print(report.console_tables(per_model, meta["entries"]))
    return 0


def add_eval_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``eval`` on an ``add_subparsers()`` object; returns its parser."""
    p = subparsers.add_parser(
        "eval", help="score models on an evaluation suite (tables, results.json, plots)",
        description="Score one or more models on every (dataset, split, task) entry of a suite "
        "YAML (format: docs/evaluation.md, examples in configs/eval/). Writes results.json, "
        "results.md (one table per task and dataset, one column per model) and plots (PR "
        "curves, confusion matrices, reliability and risk-coverage diagrams, best and worst "
        "predictions) to --out. Tasks a model lacks are skipped and shown as '—'.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  unihema eval --suite configs/eval/demo.yaml --model runs/demo\n"
        "  unihema eval --suite configs/eval/real.yaml --model runs/a/model --model runs/b/model"
        " --limit 50\n"
        "  unihema eval --suite configs/eval/demo.yaml --model runs/demo --no-plots --out /tmp/ev")
    p.add_argument("--suite", required=True, metavar="FILE", help="suite YAML")
    p.add_argument("--model", required=True, action="append", metavar="DIR",
                   help="checkpoint folder, run folder holding model/, or baseline folder; "
                   "repeat to compare models side by side")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="report folder (default: runs/eval/<suite name>)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="at most N items per entry, evenly spread (overrides the suite's limit)")
    p.add_argument("--no-plots", action="store_true", help="only results.json and results.md")
    p.add_argument("--gallery", type=int, default=GALLERY_SIZE, metavar="N",
                   help=f"best and worst items drawn per gallery (default {GALLERY_SIZE}; 0 = "
                   "none)")
    p.add_argument("--device", default="cpu",
                   help="torch device to run the models on, e.g. cuda (default: cpu)")
    p.add_argument("--reading", choices=("model", "truth"), default="model",
                   help="what VQA and MLM read of each image: the model's own heads (default) "
                   "or the annotations, to score the decoder apart from the heads "
                   "(docs/model.md, 'The reading')")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_eval)
    return p


__all__ = [
    "ENTRY_KEYS", "SUITE_KEYS", "LoadedModel", "Suite", "SuiteEntry", "add_eval_parser",
    "cmd_eval", "entry_keys", "item_image_paths", "load_model", "load_suite", "model_names",
    "run_suite", "score_entry", "subset_indices", "train_overlap",
]
