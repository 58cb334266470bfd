"""``unihema eval``: score one or more models on a suite of (dataset, split, task) entries.

The suite file format: :mod:`unihema.evaluation.suite`; the run: :func:`unihema.benchmark.
run_suite`. Building this parser imports neither torch nor the evaluators.
"""

from __future__ import annotations

import argparse
from typing import Any

from unihema.evaluation.suite import GALLERY_SIZE


def cmd_eval(args: argparse.Namespace) -> int:
    from unihema.benchmark.suite import run_suite
    from unihema.evaluation import report

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


__all__ = ["add_eval_parser", "cmd_eval"]
