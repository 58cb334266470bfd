"""``unihema trust``: fit and score per-cell trust (docs/trust.md).

    unihema trust fit  --model DIR --config CFG [--split val] [--method names]
    unihema trust eval --model DIR --config CFG [--split test] [--out DIR]
    unihema trust show --model DIR

``fit`` writes ``trust.json`` and ``trust.safetensors`` into the model folder (atomically);
``eval`` writes ``trust_results.json``, ``trust_results.md`` and reliability diagrams. Building
this parser imports neither torch nor the model.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def _config(args: argparse.Namespace):
    from unihema.config import load_config

    return load_config(args.config, args.overrides)


def cmd_fit(args: argparse.Namespace) -> int:
    from unihema.benchmark.trust import fit_trust

    params = json.loads(args.params) if args.params else None
    state = fit_trust(args.model, _config(args), split=args.split, method=args.method,
                      params=params, target_accuracy=args.target_accuracy, limit=args.limit,
                      train_limit=args.train_limit, progress=not args.no_progress)
    f = state.fitted_on
    print(f"trust fitted on {f['val_cells']} cells of {f['val']} ({f['train_cells']} training "
          f"cells for the embedding scores) in {f['seconds']} s: temperature "
          f"{state.temperature:.3f}, conformal {state.conformal}, {state.unknown_method} "
          f"threshold {state.unknown_threshold:.4g}, referral below confidence "
          f"{state.referral_threshold:.3f}; written to {f['model']}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from unihema.benchmark.trust import evaluate_trust, tables

    out = Path(args.out) if args.out else None
    results = evaluate_trust(args.model, _config(args), split=args.split, limit=args.limit,
                             out=out, plots=not args.no_plots, progress=not args.no_progress)
    print(tables(results), end="")
    if out is not None:
        print(f"wrote {out / 'trust_results.json'} and {out / 'trust_results.md'}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from pathlib import Path

    from unihema.trust.state import TRUST_JSON

    path = Path(args.model)
    path = path / "model" if (path / "model").is_dir() else path
    if not (path / TRUST_JSON).is_file():
        raise FileNotFoundError(f"{path} holds no {TRUST_JSON}: run `unihema trust fit`")
    print((path / TRUST_JSON).read_text(), end="")
    return 0


def add_trust_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``trust`` on an ``add_subparsers()`` object; returns its parser."""
    p = subparsers.add_parser(
        "trust", help="calibrated probabilities, prediction sets, unknown-cell scores, referral",
        description="Fit per-cell trust on held-out cells and save it beside the model, or "
        "score it (calibration, conformal coverage, unknown-cell detection, referral). "
        "docs/trust.md explains every number.")
    sub = p.add_subparsers(dest="trust_command", metavar="SUBCOMMAND", required=True)

    def common(q: argparse.ArgumentParser, split: str) -> None:
        q.add_argument("--model", required=True, metavar="DIR",
                       help="unihema checkpoint folder or run folder holding model/")
        q.add_argument("--config", required=True, metavar="FILE",
                       help="config whose data entries give the cells (configs/trust/*.yaml)")
        q.add_argument("--split", default=split, choices=("train", "val", "test"),
                       help=f"data section to read (default {split})")
        q.add_argument("--limit", type=int, default=None, metavar="N",
                       help="at most N cells per entry, evenly spread")
        q.add_argument("--no-progress", action="store_true", help="no progress bars")
        q.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")

    f = sub.add_parser("fit", help="fit on held-out cells; writes trust.json into the model",
                       description="Fit the temperature, the conformal thresholds (90 and 95 "
                       "%%), every unknown-cell scorer (thresholds keeping 95 %% of the known "
                       "cells) and the referral threshold on data.<split> (default val; its "
                       "candidates.classify are the trained types), the embedding scorers on "
                       "data.train; write trust.json + trust.safetensors into the model folder.")
    common(f, "val")
    f.add_argument("--method", default="names",
                   help="unknown-cell scorer whose flag the state gives: msp, energy, "
                   "mahalanobis, knn or names (default names, the best on the synthetic "
                   "protocol: docs/trust.md)")
    f.add_argument("--params", default="", metavar="JSON",
                   help='scorer options, e.g. \'{"knn": {"k": 5}}\'')
    f.add_argument("--target-accuracy", type=float, default=0.98,
                   help="accuracy the cells decided alone must reach on the fitting split "
                   "(default 0.98)")
    f.add_argument("--train-limit", type=int, default=3000, metavar="N",
                   help="training cells per data.train entry for the embedding scorers "
                   "(default 3000)")
    f.set_defaults(func=cmd_fit)

    e = sub.add_parser("eval", help="score the saved trust state on data.<split>",
                       description="Calibration (ECE, NLL, Brier), conformal coverage and set "
                       "size, unknown-cell AUROC / FPR@95TPR / AUPR of every fitted scorer, "
                       "and referral coverage and accuracy, per entry of data.<split>.")
    common(e, "test")
    e.add_argument("--out", default=None, metavar="DIR",
                   help="write trust_results.json, trust_results.md and reliability PNGs")
    e.add_argument("--no-plots", action="store_true", help="no reliability PNGs")
    e.set_defaults(func=cmd_eval)

    s = sub.add_parser("show", help="print a model's trust.json")
    s.add_argument("--model", required=True, metavar="DIR")
    s.set_defaults(func=cmd_show)
    return p


__all__ = ["add_trust_parser"]
