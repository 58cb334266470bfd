"""Train the demo model on a subset of its tasks and score it on the held-out split.

A quick probe of where the training budget goes: the same preset, data and evaluators as
`unihema demo`, restricted to some tasks and a number of steps, e.g.::

    python experiments/probe_task.py --data runs/demo/data --tasks detect --steps 300
    python experiments/probe_task.py --data runs/demo/data --tasks classify --steps 300 \\
        model.backbone.norm=group
    python experiments/probe_task.py --data runs/demo/data --tasks vqa --steps 300 \\
        --reading truth \\
        "model.reading.tasks=[vqa]"

Prints one JSON line: the overrides, training seconds, seconds per step and the headline
metrics per task (VQA and MLM also with images shuffled across questions).
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from unihema.config.loader import load_config
from unihema.config.schema import Config
from unihema.demo import PRESETS
from unihema.engine.data import build_task_splits
from unihema.engine.trainer import Trainer
from unihema.evaluation.runner import evaluate_split
from unihema.modeling.reading import ReadingCascade
from unihema.synth import WHITE_TYPES
from unihema.tasks import get_task

KEYS = ("macro_f1", "accuracy", "mAP50", "mAP", "mean_dice_fg", "mean_attribute_accuracy",
        "exact_match", "token_accuracy")


def probe_config(data: str, tasks: str, steps: int, out: str, overrides=()) -> Config:
    """The demo preset restricted to ``tasks`` (comma-separated) on the generated dataset
    ``data``, trained for ``steps`` into ``out``, then ``overrides`` (KEY=VALUE)."""
    entries = [x for s in ("train", "val", "test")
               for x in (f"data.{s}.0.root={data}", f"data.{s}.0.tasks=[{tasks}]")]
    cfg = load_config(str(PRESETS / "demo.yaml"), entries + [
        f"train.output_dir={out}", f"train.max_steps={steps}",
        f"model.tasks=[{tasks}]"] + list(overrides))
    # cross-supervision only between the probed tasks
    keep = set(tasks.split(","))
    cfg.data.cross_supervision = {t: [o for o in others if o in keep]
                                  for t, others in cfg.data.cross_supervision.items()
                                  if t in keep and any(o in keep for o in others)}
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a generated synthetic dataset folder")
    ap.add_argument("--tasks", required=True, help="comma-separated tasks, e.g. detect,classify")
    ap.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    ap.add_argument("--out", default="runs/probe", help="run folder (default runs/probe)")
    ap.add_argument("--reading", choices=("model", "truth"), default="model",
                    help="what VQA and MLM read at evaluation with model.reading: the model's "
                    "heads (default) or the annotations")
    ap.add_argument("overrides", nargs="*", help="config overrides KEY=VALUE")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tasks = args.tasks.split(",")
    cfg = probe_config(args.data, args.tasks, args.steps, args.out, args.overrides)
    t0 = time.perf_counter()
    trainer = Trainer(cfg, progress=False)
    trainer.train(save=False)
    seconds = time.perf_counter() - t0
    predictor = ReadingCascade(trainer.model, source=args.reading)
    out = {}
    for split in build_task_splits(cfg.data.test, cfg, train=False, tasks=tasks):
        opts = {"restrict_to": list(WHITE_TYPES)} if split.task == "classify" else {}
        m = evaluate_split(predictor, split, limit=get_task(split.task).demo_limit,
                           evaluator_options=opts, progress=False)
        row = {k: round(v, 3) for k, v in m.items() if k in KEYS or k.startswith(("AP50/", "em/"))}
        if split.task in ("vqa", "mlm"):
            key = "exact_match" if split.task == "vqa" else "token_accuracy"
            row["shuffled"] = round(evaluate_split(predictor, split,
                                                   limit=get_task(split.task).demo_limit,
                                                   shuffle_images=True, progress=False)[key], 3)
        out[split.task] = row
    print(json.dumps({"overrides": args.overrides, "reading": args.reading, "steps": args.steps,
                      "train_s": round(seconds), "s_per_step": round(seconds / args.steps, 3),
                      "metrics": out}))


if __name__ == "__main__":
    main()
