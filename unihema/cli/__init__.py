"""The ``unihema`` command.

    unihema demo [--quick]                       the end-to-end demo on synthetic smears
    unihema train --config FILE [key=value ...]  train the unified model (--resume, --deepspeed)
    unihema convert-checkpoint CKPT OUT          training checkpoint -> save_pretrained folder
    unihema ask --model DIR IMAGE... "question"  (also detect, segment, classify, describe)
    unihema analyze IMAGE|FOLDER|SCAN.tif --model DIR --out DIR   whole-smear analysis
    unihema data list | info KEY                 registered datasets
    unihema data generate --out DIR              write a synthetic smear dataset
    unihema data check KEY --root DIR            validate a dataset, counts, problems, duplicates
    unihema data preview KEY --root DIR --out grid.png
    unihema data example KEY --out DIR           a tiny dataset in KEY's native layout
    unihema data download KEY --to DIR           fetch and safely extract a dataset
    unihema data export KEY --root DIR --to coco|hf --out DIR
    unihema trust fit|eval --model DIR --config CFG   per-cell trust (docs/trust.md)
    unihema patient eval|train|retrieve          patient level (docs/patient.md)
    unihema config show [FILE] [key=value ...]   the resolved config
    unihema config schema                        every config key, type, default and meaning

Run ``unihema COMMAND --help`` for the options of each command. One module per command
group: :mod:`.train` (demo, train, convert-checkpoint), :mod:`.inference` (ask, detect,
segment, classify, describe; inputs checked by :mod:`.inputs`), :mod:`.data`,
:mod:`.config`; ``eval`` and ``baseline`` are added by their own packages.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from unihema.cli.analyze import add_analyze_parser
from unihema.cli.config import add_config_parser
from unihema.cli.data import add_data_parser
from unihema.cli.inference import add_inference_parsers
from unihema.cli.train import add_train_parsers


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def take_extra_overrides(args: argparse.Namespace, extra: List[str]) -> bool:
    """Add ``KEY=VALUE`` words given after an option (``train --config X a=1 --resume auto
    b=2``: argparse fills a positional list once) to ``args.overrides``."""
    if not isinstance(getattr(args, "overrides", None), list):
        return False
    if any(item.startswith("-") or "=" not in item for item in extra):
        return False
    args.overrides.extend(extra)
    return True


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="unihema",
        description="unihema: one vision-language model for blood-smear images "
        "(detect, classify, segment, morphology, masked report filling, VQA).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  unihema demo --quick\n  unihema data generate --out data/synth\n"
        "  unihema data check synthetic_smear --root data/synth\n"
        "  unihema config show configs/quick/synthetic.yaml train.lr=1e-3\n"
        "  unihema eval --suite configs/eval/demo.yaml --model runs/demo\n"
        "  unihema baseline train --kind detector --config configs/compare/unified.yaml",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    add_train_parsers(sub)
    add_inference_parsers(sub)
    add_analyze_parser(sub)
    add_data_parser(sub)
    add_config_parser(sub)

    from unihema.cli.baseline import add_baseline_parser
    from unihema.cli.eval import add_eval_parser
    from unihema.cli.patient import add_patient_parser
    from unihema.cli.trust import add_trust_parser

    add_eval_parser(sub)
    add_baseline_parser(sub)
    add_trust_parser(sub)
    add_patient_parser(sub)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    from unihema.config import ConfigError
    from unihema.data.catalog import DataError

    from unihema.cli.inputs import take_extra_images

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not (take_extra_images(args, extra) or take_extra_overrides(args, extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _setup_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ConfigError, DataError, KeyError, FileNotFoundError, ValueError) as exc:
        if args.verbose:
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr)
        return 2

