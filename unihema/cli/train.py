"""``unihema demo``, ``unihema train`` and ``unihema convert-checkpoint``."""

from __future__ import annotations

import argparse
import logging
import sys


logger = logging.getLogger("unihema")


# --------------------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    from unihema.config import load_config
    from unihema.engine.trainer import Trainer

    from unihema.engine.checkpoint import CheckpointError
    from unihema.engine.trainer import NonFiniteLossError

    cfg = load_config(args.config, args.overrides)
    try:
        trainer = Trainer(cfg, progress=not args.no_progress, deepspeed=args.deepspeed,
                          resume=args.resume, fresh=args.fresh)
        trainer.train()
    except (NonFiniteLossError, CheckpointError) as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 3
    if trainer.dist.is_main:
        print(f"wrote {trainer.out / 'model'} after {trainer.stop_summary()}; "
              f"losses in {trainer.out / 'metrics.jsonl'}")
    return 0


def cmd_convert_checkpoint(args: argparse.Namespace) -> int:
    from unihema.engine.checkpoint import CheckpointError
    from unihema.engine.convert import convert_checkpoint

    try:
        out = convert_checkpoint(args.checkpoint, args.out)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(f"wrote {out} (load it with UniHema.from_pretrained or --model {out})")
    return 0



# --------------------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    from unihema.demo import run_demo

    return run_demo(args.out, quick=args.quick, config=args.config, overrides=args.set or [],
                    train=not args.data_only)


def add_train_parsers(sub) -> None:
    """Add these commands to the ``unihema`` subparsers ``sub``."""
    demo = sub.add_parser("demo", help="end-to-end demo on built-in synthetic smears",
                          description="Generate synthetic smears, train the unified model on "
                          "all six tasks, evaluate it on held-out fields and write a report, "
                          "overlays and the checkpoint under --out.")
    demo.add_argument("--out", default="runs/demo", help="run folder (default: runs/demo)")
    demo.add_argument("--quick", action="store_true",
                      help="small data and a short run (about two minutes): checks the path")
    demo.add_argument("--data-only", action="store_true",
                      help="generate, check and preview the data; skip the model")
    demo.add_argument("--config", default=None,
                      help="YAML config instead of the built-in preset (presets/demo.yaml)")
    demo.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE",
                      help="config overrides (--set may repeat; all are applied in order)")
    demo.set_defaults(func=cmd_demo)

    tr = sub.add_parser("train", help="train the unified model (all configured tasks, one run)",
                        description="Train on the mixture in data.train; writes the run folder "
                        "(config.yaml, metrics.jsonl, model/).")
    tr.add_argument("--config", required=True, help="YAML config (see configs/)")
    tr.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.add_argument("--deepspeed", default=None, metavar="JSON",
                    help="train with DeepSpeed using this config, e.g. "
                    "configs/deepspeed/zero2.json (default: train.deepspeed)")
    tr.add_argument("--resume", default=None, metavar="auto|PATH",
                    help="'auto' = newest complete checkpoint of output_dir, or a checkpoint "
                    "folder (default: train.resume)")
    tr.add_argument("--fresh", action="store_true",
                    help="with --resume auto: when every checkpoint of output_dir is damaged, "
                    "move them aside (step_N.damaged) and start from step 0 instead of stopping")
    # the deepspeed launcher appends --local_rank=N; the rank is read from LOCAL_RANK instead
    tr.add_argument("--local_rank", "--local-rank", type=int, default=None,
                    help=argparse.SUPPRESS)
    tr.set_defaults(func=cmd_train)

    cv = sub.add_parser("convert-checkpoint",
                        help="training checkpoint (plain or DeepSpeed) -> save_pretrained folder",
                        description="Verify a training checkpoint and write a plain model "
                        "folder (config.json + model.safetensors + tokenizer). CHECKPOINT may "
                        "be a step_NNNNNNNN folder, a checkpoints/ folder or a run folder "
                        "(newest complete checkpoint).")
    cv.add_argument("checkpoint", help="checkpoint, checkpoints/ or run folder")
    cv.add_argument("out", help="model folder to write")
    cv.set_defaults(func=cmd_convert_checkpoint)
