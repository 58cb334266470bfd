"""``unihema eval``'s run: every model on every entry of a suite, then the reports.

Items come from the same path as training and the demo: a :class:`DatasetEntry` and
:func:`~unihema.engine.data.build_task_splits` with ``train=False`` (resizing through the
processor, prompts, relabelling; :func:`unihema.benchmark.evaluate.entry_split`), so the
numbers match ``unihema demo``'s. Models load through :func:`unihema.benchmark.models.
load_model`; an entry whose task a model lacks is skipped for that model (a logged note, ``—``
in the tables); a model that supports no entry at all is an error. Each (model, entry) is
scored by :func:`unihema.evaluation.suite.score_entry` (the one inference loop).

Outputs (:func:`run_suite`, all written atomically): ``results.json``, ``results.md`` (formats
in :mod:`unihema.evaluation.report`) and ``plots/<model>/*.png``
(:mod:`unihema.evaluation.plots`). The suite file format: :mod:`unihema.evaluation.suite`.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from tqdm import tqdm

from unihema.benchmark.evaluate import entry_split
from unihema.benchmark.models import load_model, model_names
from unihema.evaluation import report
from unihema.utils import slug
from unihema.evaluation.suite import (DEFAULT_IMAGE_SIZE, GALLERY_SIZE, entry_keys,
                                      gallery_items, load_suite, score_entry, train_overlap)

logger = logging.getLogger(__name__)


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
         **({"where": dict(e.where)} if e.where else {}),
         **({"evaluator": e.evaluator} if e.evaluator else {})}
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
                splits[how] = entry_split(e, size, m.upscale, m.crop_size)
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


__all__ = ["run_suite"]
