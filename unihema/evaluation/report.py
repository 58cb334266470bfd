"""Reports of a suite run: ``results.json``, ``results.md`` and the console tables.

``results.json`` (written by :func:`write_results`)::

    {
      "meta": {
        "suite": "demo", "suite_file": "configs/eval/demo.yaml",
        "unihema_version": "0.1.0", "created": "2025-01-31T12:00:00+00:00",
        "limit": null, "image_size": null, "batch_size": 16,
        "seconds": {"total": 41.2, "models": {"demo": 40.9}},
        "models": {"demo": {"path": "runs/demo", "kind": "unihema", "tasks": [...],
                            "image_size": 256}},
        "entries": [{"key": "synthetic_smear", "dataset": "synthetic_smear",
                     "split": "test", "root": "runs/demo/data", "task": "detect",
                     "items": 100, "shuffled": false, "options": {...},
                     "train_overlap": {"demo": {"items": 100, "exact": 0, "near": 2},
                                       "bccd-baseline": "unknown"}}, ...],
                     # items: the items scored (after classify's restrict_to)
                     # train_overlap: per model, evaluated items (before restrict_to) whose
                     # image is an exact or near duplicate of a training image of the model;
                     # "unknown": the model has no train_images.json
        "skipped": [{"model": "bccd-baseline", "task": "vqa", "dataset": "synthetic_smear",
                     "reason": "the model has no 'vqa' task"}],
        "plots": {"demo": {"detect": {"synthetic_smear": {"pr": "plots/demo/...png"}}}}
      },
      "detect": {"synthetic_smear": {"mAP": 0.41, ...}},       # one model: task level
      ...
    }

With several models the task level moves one down, under each model's name:
``{"meta": {...}, "<model>": {"<task>": {"<dataset>": {metric: value}}}}``. A (model, entry)
pair that was skipped has no metrics (it is listed in ``meta.skipped``). The dataset key is the
adapter name, or ``<dataset>/<split>`` when two entries of one task share a dataset (then
``#2``, ``#3``... if they share the split too).

``results.md``: one table per (task, entry) titled ``<task> — <dataset>/<split>``, one row per
metric (the task's headline metric and its report metrics first, as its spec orders them,
:meth:`unihema.tasks.Task.metric_order`, then the other overall metrics, then per-class
ones), one column per model, ``—`` where a model has no value, and links to the entry's
plots. Under the metrics, a ``train-image copies`` row gives each model's
training-image overlap: ``0``, ``3 of 100 (2 exact, 1 near)`` or ``unknown``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

from unihema.utils import atomic_write_text, jsonable
from unihema.tables import markdown_table, plain_table
from unihema.tasks import TASKS, get_task

#: Shown where a model has no value (task not supported, or metric not produced).
MISSING = "—"
#: Plot kinds, in link order, with their link text.
PLOT_LABELS = {"pr": "precision-recall", "confusion": "confusion matrix",
               "reliability": "reliability", "risk_coverage": "risk-coverage",
               "roc": "ROC (known vs unseen types)",
               "coverage_target": "coverage at a target accuracy",
               "gallery": "best / worst items"}


def order_metrics(task: str, names: Sequence[str]) -> List[str]:
    """The task's metrics in its spec's order first (:meth:`~unihema.tasks.Task.metric_order`:
    the headline, then its report metrics), then the other overall metrics, then the
    per-class or per-type ones (names with ``/``), each group in first-seen order."""
    seen = list(dict.fromkeys(names))
    order = get_task(task).metric_order() if task in TASKS else []
    head = [m for m in order if m in seen]
    rest = [m for m in seen if m not in head]
    return head + [m for m in rest if "/" not in m] + [m for m in rest if "/" in m]


def format_value(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.3f}"
    return str(value)


#: the row of results.md and the console tables that shows the training-image overlap
OVERLAP_ROW = "train-image copies"


def format_overlap(value: Any) -> str:
    """``train_overlap`` of one (model, entry) for a table cell."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value
    n = value["exact"] + value["near"]
    return "0" if not n else (f"{n} of {value['items']} ({value['exact']} exact, "
                              f"{value['near']} near)")


def nest(per_model: Mapping[str, Any], meta: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``results.json`` object: task level for one model, model level for several."""
    out: Dict[str, Any] = {"meta": dict(meta)}
    if len(per_model) == 1:
        out.update(next(iter(per_model.values())))
    else:
        out.update(per_model)
    return out


def entry_tables(per_model: Mapping[str, Mapping[str, Mapping[str, Mapping[str, float]]]],
                 entries: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """One table per entry: ``{"task", "key", "title", "rows"}``, rows[0] the header."""
    models = list(per_model)
    tables = []
    for e in entries:
        task, key = e["task"], e["key"]
        got = {m: per_model[m].get(task, {}).get(key) for m in models}
        names = [n for m in models for n in (got[m] or {})]
        rows: List[List[str]] = [["metric", *models]]
        for metric in order_metrics(task, names):
            rows.append([metric, *(format_value((got[m] or {}).get(metric)) for m in models)])
        if len(rows) == 1:
            rows.append(["(no metrics)", *(MISSING for _ in models)])
        if e.get("train_overlap"):
            rows.append([OVERLAP_ROW, *(format_overlap(e["train_overlap"].get(m))
                                        for m in models)])
        items = e.get("items")
        how = f" ({e['evaluator'].replace('_', ' ')})" if e.get("evaluator") else ""
        title = f"{task}{how} — {e['dataset']}/{e['split']}" + (
            f" ({items} items)" if items is not None else "")
        tables.append({"task": task, "key": key, "title": title, "rows": rows})
    return tables


def results_markdown(results: Mapping[str, Any], per_model: Mapping[str, Any]) -> str:
    """The text of ``results.md`` (see the module docstring)."""
    meta = results["meta"]
    lines = [f"# Evaluation: {meta['suite']}", ""]
    models = ", ".join(f"`{n}` ({m['path']})" for n, m in meta["models"].items())
    lines += [f"Suite `{meta['suite_file']}`; models: {models}; unihema "
              f"{meta['unihema_version']}; {meta['seconds']['total']:.1f} s.", "",
              f"Values rounded to 3 decimals; {MISSING} = not evaluated (the model lacks the "
              "task) or not produced. Metric definitions: docs/evaluation.md. Every number: "
              "`results.json`.", "",
              f"`{OVERLAP_ROW}`: evaluated items whose image is an exact or near duplicate of "
              "one of that model's training images (its `train_images.json`), so not held "
              "out; `unknown`: the model carries no such record.", ""]
    plots = meta.get("plots", {})
    for t in entry_tables(per_model, meta["entries"]):
        lines += [f"## {t['title']}", "", markdown_table(t["rows"]), ""]
        for model in per_model:
            files = plots.get(model, {}).get(t["task"], {}).get(t["key"], {})
            links = [f"[{PLOT_LABELS.get(k, k)}]({files[k]})" for k in PLOT_LABELS if k in files]
            if links:
                lines += [f"Plots ({model}): " + " · ".join(links), ""]
    if meta.get("skipped"):
        lines += ["## Skipped", ""]
        lines += [f"- `{s['model']}`: {s['task']} on {s['dataset']}: {s['reason']}"
                  for s in meta["skipped"]]
        lines.append("")
    return "\n".join(lines)


def console_tables(per_model: Mapping[str, Any], entries: Sequence[Mapping[str, Any]]) -> str:
    """Plain tables of every entry, for the terminal."""
    parts = []
    for t in entry_tables(per_model, entries):
        parts += [t["title"], plain_table(t["rows"]), ""]
    return "\n".join(parts)


def write_results(out_dir: Path, results: Mapping[str, Any], per_model: Mapping[str, Any]
                  ) -> None:
    """``results.json`` and ``results.md`` in ``out_dir``, each written atomically."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "results.json",
                      json.dumps(jsonable(results), indent=2, allow_nan=False) + "\n")
    atomic_write_text(out_dir / "results.md", results_markdown(results, per_model))


__all__ = [
    "MISSING", "OVERLAP_ROW", "console_tables", "entry_tables", "format_overlap",
    "format_value", "nest", "order_metrics", "results_markdown", "write_results",
]
