"""Train the demo model on some tasks, then score it with its BatchNorm running statistics as
trained and recomputed from one task's training batches at a time.

The probe behind ``backbone.norm: split_batch`` (docs/model.md), on the demo's data, e.g.::

    python experiments/probe_bn_stats.py detect,classify 300 model.backbone.norm=batch
    python experiments/probe_bn_stats.py detect,classify 300          # split_batch (the default)

Prints one line per variant (as trained; statistics from each task's batches): detection
mAP@0.5, classification accuracy / macro-F1 (all classes), segmentation Dice or VQA exact match
on 200 evenly spaced test items per task. Recomputing puts both statistics sets of a
``split_batch`` trunk on the same batches' inputs, so read that variant for ``batch`` trunks.
"""

from __future__ import annotations

import argparse
import json
import logging

import torch

from probe_task import probe_config  # tools/ is on the path when this script runs

from unihema.pipeline.collate import collate
from unihema.engine.data import build_task_splits
from unihema.engine.trainer import Trainer
from unihema.evaluation.runner import evaluate_split

KEYS = ("mAP50", "macro_f1", "accuracy", "mean_dice_fg", "exact_match")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tasks", help="comma-separated tasks, e.g. detect,classify")
    ap.add_argument("steps", type=int, help="training steps")
    ap.add_argument("--data", default="runs/demo/data", help="generated synthetic data")
    ap.add_argument("overrides", nargs="*", help="config overrides KEY=VALUE")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tasks = args.tasks.split(",")
    cfg = probe_config(args.data, args.tasks, args.steps, "runs/probe_bn", args.overrides)
    trainer = Trainer(cfg, progress=False)
    trainer.train(save=False)
    model = trainer.model
    test = build_task_splits(cfg.data.test, cfg, train=False, tasks=tasks)

    def score(tag: str) -> None:
        row = {}
        for split in test:
            m = evaluate_split(model, split, limit=200, progress=False)
            row[split.task] = {k: round(v, 3) for k, v in m.items() if k in KEYS}
        print(tag, json.dumps(row), flush=True)

    score("as trained")
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for split in build_task_splits(cfg.data.train, cfg, train=True, tasks=tasks):
        for bn in norms:  # cumulative average over the batches below
            bn.reset_running_stats()
            bn.momentum = None
            if hasattr(bn, "small_running_mean"):
                bn.small_running_mean.zero_()
                bn.small_running_var.fill_(1.0)
                bn.small_num_batches_tracked.zero_()
        model.train()
        ds = split.dataset
        with torch.no_grad():
            for k in range(10):
                batch = collate([ds[(k * 8 + i) % len(ds)] for i in range(8)])
                model.encode_image(batch["images"], batch["pixel_mask"])
        model.eval()
        score(f"statistics from {split.task}")


if __name__ == "__main__":
    main()
