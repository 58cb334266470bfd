"""The unified model against single-task specialists, on real data, at the same time budget.

Trains, each for ``--minutes`` of wall-clock time on this machine:

* ``unified``: one unihema model, all three tasks in one run (configs/compare/unified.yaml);
* ``detector``: torchvision FCOS on BCCD (detect);
* ``segmenter``: a U-Net on WBC-Seg-Zheng (segment);
* ``classifier``: a ResNet on WBC-Seg-Zheng (classify: the five white-cell types),

with the same data entries, resolution, batch sizes, augmentation and learning-rate schedule
(warm-up + cosine over the time budget, :class:`unihema.engine.budget.Budget`), then scores every
model on the held-out test splits with the same evaluators and writes::

    <out>/results.json     {"models": {name: {task: {dataset: metrics}}}, "runs": {...}}
    <out>/comparison.md    the side-by-side table
    <out>/<name>/          each model's checkpoint and training log

and, with ``--docs FILE``, replaces the section between ``<!-- compare:begin -->`` and
``<!-- compare:end -->`` of that file with the table, the command and the wall times.
Finished models are reused on a second run (``--retrain`` to train again), so an interrupted
comparison resumes where it stopped. Example (the documented run, about 65 minutes on 2 cores)::

    python tools/compare_specialists.py --minutes 15 --out runs/compare --docs docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from unihema.config.loader import load_config  # noqa: E402
from unihema.config.schema import Config  # noqa: E402
from unihema.config.loader import atomic_write_text  # noqa: E402
from unihema.benchmark import evaluate_entries, load_model  # noqa: E402
from unihema.tables import markdown_table, plain_table  # noqa: E402

logger = logging.getLogger("compare")

SPECIALISTS = {"detector": "detect", "segmenter": "segment", "classifier": "classify"}
MODELS = ("unified", *SPECIALISTS)
#: (task, metric, label, bar for the unified model or None)
HEADLINE = [
    ("detect", "mAP50", "mAP@0.5", 0.70),
    ("detect", "mAP", "mAP@[.5:.95]", None),
    ("detect", "AP50/red blood cell", "AP@0.5 red blood cell", None),
    ("detect", "AP50/white blood cell", "AP@0.5 white blood cell", None),
    ("detect", "AP50/platelet", "AP@0.5 platelet", None),
    ("detect", "count_mae", "count MAE per class and image", None),
    ("segment", "mean_dice_fg", "mean foreground Dice", 0.80),
    ("segment", "dice/nucleus", "Dice nucleus", None),
    ("segment", "dice/cytoplasm", "Dice cytoplasm", None),
    ("segment", "mean_iou_fg", "mean foreground IoU", None),
    ("classify", "accuracy", "accuracy", None),
    ("classify", "balanced_accuracy", "balanced accuracy", None),
    ("classify", "macro_f1", "macro F1", None),
    ("classify", "ece", "ECE (lower is better)", None),
]
LOWER_IS_BETTER = {"count_mae", "ece"}
BEGIN, END = "<!-- compare:begin -->", "<!-- compare:end -->"


def _done(model_dir: Path) -> bool:
    return (model_dir / "model.safetensors").is_file() and (
        (model_dir / "config.json").is_file() or (model_dir / "baseline.json").is_file())


def train_unified(cfg: Config, out: Path, retrain: bool) -> Dict[str, Any]:
    from unihema.engine.trainer import Trainer

    model_dir = out / "unified" / "model"
    if _done(model_dir) and not retrain:
        logger.info("unified: reusing %s", model_dir)
        return json.loads((out / "unified" / "run.json").read_text())
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    trainer.train()
    run = {"steps": trainer.step, "stopped_by": trainer.stopped_by,
           "train_seconds": round(time.perf_counter() - t0, 1),
           "parameters": sum(p.numel() for p in trainer.model.parameters())}
    atomic_write_text(out / "unified" / "run.json", json.dumps(run, indent=2))
    return run


def train_specialist(cfg: Config, kind: str, out: Path, minutes: float, retrain: bool
                     ) -> Dict[str, Any]:
    from unihema.baselines import train_baseline

    model_dir = out / kind
    if _done(model_dir) and not retrain and (model_dir / "run.json").is_file():
        logger.info("%s: reusing %s", kind, model_dir)
        return json.loads((model_dir / "run.json").read_text())
    t0 = time.perf_counter()
    summary = train_baseline(cfg, kind=kind, out_dir=model_dir, max_minutes=minutes)
    run = {"steps": int(summary["steps"]), "stopped_by": summary.get("stopped_by"),
           "train_seconds": round(time.perf_counter() - t0, 1),
           "parameters": int(summary.get("parameters", 0)), "arch": summary.get("arch", "")}
    atomic_write_text(model_dir / "run.json", json.dumps(run, indent=2))
    return run


def load(name: str, out: Path):
    """The trained model ``name`` (unified or a specialist), as ``unihema eval`` loads it."""
    return load_model(out / "unified" / "model" if name == "unified" else out / name, name=name)


def score(model, cfg: Config, tasks: Sequence[str], limit: Optional[int] = None
          ) -> Dict[str, Dict[str, Dict[str, float]]]:
    """``{task: {dataset: metrics}}`` on the configured test entries, the same evaluators and
    inference loop for every model (``limit``: at most that many items per entry, for smoke
    tests)."""
    return evaluate_entries(model, cfg, cfg.data.test, tasks=list(tasks), limit=limit,
                            batch_size=8, progress=True)


def comparison_rows(results: Dict[str, Dict], cfg: Config) -> List[List[str]]:
    datasets = {e.name: e for e in cfg.data.test}
    rows = [["task", "dataset (test)", "metric", "unified", "specialist", "unified - specialist",
             "bar (unified)"]]
    for task, metric, label, bar in HEADLINE:
        spec = next(k for k, t in SPECIALISTS.items() if t == task)
        for ds in datasets:
            u = results.get("unified", {}).get(task, {}).get(ds, {}).get(metric)
            s = results.get(spec, {}).get(task, {}).get(ds, {}).get(metric)
            if u is None and s is None:
                continue
            diff = "" if u is None or s is None else f"{u - s:+.3f}"
            verdict = ""
            if bar is not None and u is not None:
                verdict = f">= {bar:.2f}: {'met' if u >= bar else 'missed'}"
                if s is not None:
                    verdict += f"; within 0.05: {'met' if u >= s - 0.05 else 'missed'}"
            rows.append([task, ds, label, "—" if u is None else f"{u:.3f}",
                         "—" if s is None else f"{s:.3f} ({spec})", diff, verdict])
    return rows


def run_rows(runs: Dict[str, Dict[str, Any]]) -> List[List[str]]:
    rows = [["model", "tasks", "architecture", "parameters", "steps", "stopped by",
             "training time"]]
    for name, r in runs.items():
        tasks = "detect + segment + classify" if name == "unified" else SPECIALISTS[name]
        arch = "unihema tiny (one run)" if name == "unified" else r.get("arch", name)
        rows.append([name, tasks, arch, f"{r.get('parameters', 0) / 1e6:.1f} M",
                     str(r["steps"]), r.get("stopped_by") or "unrecorded",
                     f"{r['train_seconds'] / 60:.1f} min"])
    return rows


def write_docs(path: Path, section: str) -> None:
    text = path.read_text() if path.is_file() else ""
    block = f"{BEGIN}\n{section.rstrip()}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    atomic_write_text(path, text)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python tools/compare_specialists.py --minutes 15 --out runs/compare "
               "--docs docs/benchmarks.md",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(REPO / "configs" / "compare" / "unified.yaml"),
                    help="unihema config: data entries, resolution, augmentation, schedule and "
                         "the unified model (default configs/compare/unified.yaml)")
    ap.add_argument("--minutes", type=float, default=15.0,
                    help="wall-clock training budget of EACH model (default 15)")
    ap.add_argument("--models", default=",".join(MODELS),
                    help=f"comma-separated subset of {', '.join(MODELS)}")
    ap.add_argument("--out", default="runs/compare", help="output folder (default runs/compare)")
    ap.add_argument("--docs", default="", help="markdown file whose compare section to rewrite")
    ap.add_argument("--limit", type=int, default=None,
                    help="score at most N test items per entry (smoke tests; default all)")
    ap.add_argument("--retrain", action="store_true", help="train again even when a finished "
                                                           "model is in --out")
    ap.add_argument("overrides", nargs="*", help="config overrides KEY=VALUE (applied to all)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("unihema").setLevel(logging.WARNING)
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = sorted(set(names) - set(MODELS))
    if bad:
        ap.error(f"unknown model(s) {bad}; choose from {list(MODELS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    overrides = [f"train.max_minutes={args.minutes}", f"train.output_dir={out / 'unified'}",
                 *args.overrides]
    cfg = load_config(args.config, overrides)
    for e in [*cfg.data.train, *cfg.data.test]:
        if not Path(e.root).is_dir():
            ap.error(f"dataset folder {e.root} ({e.name}) not found: the comparison needs the "
                     f"real datasets (../shared/datasets)")

    t_all = time.perf_counter()
    t_eval = 0.0
    runs: Dict[str, Dict[str, Any]] = {}
    for name in names:
        logger.info("training %s for %.1f min", name, args.minutes)
        if name == "unified":
            runs[name] = train_unified(cfg, out, args.retrain)
        else:
            runs[name] = train_specialist(cfg, name, out, args.minutes, args.retrain)
    results: Dict[str, Dict] = {}
    t_eval = time.perf_counter()
    for name in names:
        logger.info("evaluating %s", name)
        model = load(name, out)
        tasks = cfg.model.tasks if name == "unified" else [SPECIALISTS[name]]
        results[name] = score(model, cfg, tasks, args.limit)
    total = time.perf_counter() - t_all
    eval_s = time.perf_counter() - t_eval
    train_s = sum(r["train_seconds"] for r in runs.values())

    command = "python tools/compare_specialists.py " + " ".join(
        (sys.argv[1:] if argv is None else list(argv)))
    meta = {"command": command, "minutes_per_model": args.minutes, "total_seconds": round(total),
            "train_seconds": round(train_s), "eval_seconds": round(eval_s),
            "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or "cpu",
            "cores": os.cpu_count(), "config": args.config, "overrides": args.overrides}
    atomic_write_text(out / "results.json", json.dumps(
        {"meta": meta, "runs": runs, "models": results}, indent=2))
    table = comparison_rows(results, cfg)
    train_table = run_rows(runs)
    print("\n" + plain_table(train_table))
    print("\n" + plain_table(table))
    section = "\n".join([
        f"Command (one run on {os.cpu_count()} CPU cores: training {train_s / 60:.1f} min in "
        f"all, {args.minutes:g} min per model; evaluation {eval_s:.0f} s; models trained "
        f"earlier into --out are reused, not retrained):", "", "```bash", command, "```", "",
        markdown_table(train_table), "", markdown_table(table), ""])
    atomic_write_text(out / "comparison.md", "# Unified model versus specialists\n\n" + section)
    if args.docs:
        write_docs(Path(args.docs), section)
        print(f"\nwrote the comparison section of {args.docs}")
    print(f"wrote {out / 'results.json'} and {out / 'comparison.md'} ({total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
