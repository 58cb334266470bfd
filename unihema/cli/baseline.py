"""``unihema baseline train|eval``: train a single-task specialist, score it like the unified
model. :func:`add_baseline_parser` registers the command on the ``unihema`` subparsers."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List

EXAMPLES_TRAIN = """examples:
  # FCOS on the detection entries of the comparison config, 15 minutes of training
  unihema baseline train --kind detector --config configs/compare/unified.yaml --minutes 15
  # Faster R-CNN instead, a fixed number of steps, another learning rate
  unihema baseline train --kind detector --arch fasterrcnn_resnet18 --config CFG.yaml \\
      --steps 2000 --lr 1e-4 --out runs/baselines/frcnn
  # U-Net at 128 px, batch 16 (dotted config overrides at the end)
  unihema baseline train --kind segmenter --config CFG.yaml data.image_size=128 \\
      data.task_batch_size.segment=16

The data (entries of data.train that have the task), resizing, augmentation, batch size,
optimiser, warm-up and seed come from the config, as for `unihema train`; --minutes and --steps
default to train.max_minutes and train.max_steps, --lr to train.lr.
archs: fcos_resnet18, fasterrcnn_resnet18 (detector); unet_resnet18 (segmenter);
resnet18_classifier (classifier)."""

#: the kinds (unihema.baselines.models.KINDS), listed here so that building the parser does not
#: import torch
KINDS = ("classifier", "detector", "segmenter")

EXAMPLES_EVAL = """examples:
  unihema baseline eval --model runs/baselines/fcos_resnet18 --config CFG.yaml
  unihema baseline eval --model runs/baselines/unet_resnet18 --config CFG.yaml --split val \\
      --out results/unet_val.json

Scores the model's task on the entries of data.<split> with the evaluators of the unified
model, at the image size the specialist was trained at."""


def _fail(args: argparse.Namespace, exc: Exception) -> int:
    if getattr(args, "verbose", False):
        raise exc
    print(f"error: {exc}", file=sys.stderr)
    return 2


def cmd_baseline_train(args: argparse.Namespace) -> int:
    from unihema.baselines.models import DEFAULT_ARCH
    from unihema.baselines.train import train_baseline
    from unihema.config import load_config

    cfg = load_config(args.config, args.overrides)
    arch = args.arch or DEFAULT_ARCH[args.kind]
    out = args.out or f"{cfg.train.output_dir}/baselines/{arch}"
    try:
        summary = train_baseline(cfg, kind=args.kind, arch=arch, out_dir=out,
                                 max_minutes=args.minutes, max_steps=args.steps, lr=args.lr,
                                 progress=not args.no_progress)
    except (ValueError, FloatingPointError) as exc:
        return _fail(args, exc)
    print(f"wrote {out} ({arch}, {summary['steps']} steps in {summary['seconds']:.0f} s, "
          f"stopped by {summary['stopped_by']}, final loss {summary['final_loss']:.4f})")
    print(f"next: unihema baseline eval --model {out} --config {args.config}")
    return 0


def results_rows(results: Dict[str, Dict[str, Dict[str, float]]]) -> List[List[Any]]:
    """``{task: {dataset: metrics}}`` -> table rows (header first): task, dataset, metric,
    value; the overall metrics of each dataset before its per-class ones."""
    rows: List[List[Any]] = [["task", "dataset", "metric", "value"]]
    for task, per_dataset in results.items():
        for dataset, metrics in per_dataset.items():
            for name in sorted(metrics, key=lambda m: ("/" in m, m)):
                value = metrics[name]
                text = f"{value:.4f}" if isinstance(value, float) else str(value)
                rows.append([task, dataset, name, text])
    return rows


def cmd_baseline_eval(args: argparse.Namespace) -> int:
    from unihema.baselines.models import load_baseline
    from unihema.benchmark.evaluate import evaluate_baseline
    from unihema.config import load_config
    from unihema.utils import atomic_write_text
    from unihema.tables import plain_table

    cfg = load_config(args.config, args.overrides)
    entries = getattr(cfg.data, args.split)
    try:
        if not entries:
            raise ValueError(f"{args.config}: data.{args.split} is empty; nothing to evaluate")
        model = load_baseline(args.model)
        results = evaluate_baseline(model, cfg, entries, limit=args.limit,
                                    progress=not args.no_progress)
    except ValueError as exc:
        return _fail(args, exc)
    print(f"{model.arch} ({args.model}) on data.{args.split}")
    print(plain_table(results_rows(results)))
    if args.out:
        record = {"model": str(args.model), "arch": model.arch, "task": model.task,
                  "split": args.split, "train": model.checkpoint_meta.get("train", {}),
                  "results": results}
        atomic_write_text(args.out, json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def add_baseline_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``baseline train`` and ``baseline eval`` to ``subparsers`` (the object returned by
    ``ArgumentParser.add_subparsers``); each sets ``func`` to its command function."""
    p = subparsers.add_parser(
        "baseline", help="single-task specialist baselines: train, eval",
        description="Train and score single-task specialists (FCOS / Faster R-CNN, U-Net, "
        "ResNet classifier) on the same data, resolution, augmentation and time budget as the "
        "unified model. See docs/baselines.md.")
    sub = p.add_subparsers(dest="baseline_command", metavar="ACTION")
    raw = argparse.RawDescriptionHelpFormatter

    t = sub.add_parser("train", help="train one specialist", formatter_class=raw,
                       description="Train one specialist on the entries of data.train that "
                       "supervise its task and save it (baseline.json, model.safetensors, "
                       "train_log.jsonl).",
                       epilog=EXAMPLES_TRAIN)
    t.add_argument("--kind", required=True, choices=KINDS,
                   help="detector (detect), segmenter (segment) or classifier (classify)")
    t.add_argument("--arch", default=None,
                   help="model of that kind (default: fcos_resnet18, unet_resnet18, "
                   "resnet18_classifier)")
    t.add_argument("--config", required=True, help="YAML config (data, batching, optimiser)")
    t.add_argument("--minutes", type=float, default=None,
                   help="training-time budget in minutes (default train.max_minutes; 0 = none)")
    t.add_argument("--steps", type=int, default=None,
                   help="step budget (default train.max_steps)")
    t.add_argument("--lr", type=float, default=None, help="peak learning rate (default train.lr)")
    t.add_argument("--out", default=None,
                   help="model folder (default <train.output_dir>/baselines/<arch>)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")
    t.set_defaults(func=cmd_baseline_train)

    e = sub.add_parser("eval", help="score a trained specialist", formatter_class=raw,
                       description="Score a specialist on its task of data.<split> with the "
                       "unified model's evaluators and print a table.", epilog=EXAMPLES_EVAL)
    e.add_argument("--model", required=True, help="folder written by `baseline train`")
    e.add_argument("--config", required=True, help="YAML config naming the evaluation data")
    e.add_argument("--split", default="test", choices=("train", "val", "test"),
                   help="which data.<split> list to score (default: test)")
    e.add_argument("--out", default=None, help="also write the results as JSON here")
    e.add_argument("--limit", type=int, default=None,
                   help="score at most N items per dataset (evenly spread)")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted config overrides")
    e.set_defaults(func=cmd_baseline_eval)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    return p
