"""Seconds per training step of each task, and where a run's time goes under its task weights.

Builds the demo model (or ``--config``) on a generated synthetic dataset, draws real training
batches of each task and times forward, backward and the optimizer step (median over
``--steps`` steps after ``--warmup``). The last table weighs the step times by the mixture's
task shares: the fraction of the wall clock each task takes, the figure to look at when
choosing ``data.task_weights`` for a time budget::

    python experiments/step_times.py --data runs/demo/data
    python experiments/step_times.py --data runs/demo/data --steps 10 data.task_weights.classify=4
    python experiments/step_times.py --data runs/demo/data train.cpu_bf16=false   # fp32 on any CPU

Prints a markdown table (and one JSON line with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from typing import Dict, List

import torch

from unihema.config.loader import load_config
from unihema.demo import PRESETS
from unihema.engine.trainer import Trainer
from unihema.tables import markdown_table


def time_tasks(trainer: Trainer, steps: int, warmup: int) -> Dict[str, Dict[str, float]]:
    """Median forward / backward / optimizer seconds per task over ``steps`` batches each."""
    model, opt = trainer.model, trainer.optimizer
    model.train()
    times: Dict[str, Dict[str, List[float]]] = {}
    done: Dict[str, int] = {}
    for batch in trainer.loader:
        task = batch["task"]
        n = done.get(task, 0)
        if n >= steps + warmup:
            if all(done.get(t, 0) >= steps + warmup for t in trainer.sampler.task_share()):
                break
            continue
        t0 = time.perf_counter()
        with trainer._autocast():  # the run's precision (train.precision, train.cpu_bf16)
            loss = sum(trainer.losses(batch).values())  # with the run's objectives
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        done[task] = n + 1
        if n >= warmup:
            rec = times.setdefault(task, {"forward": [], "backward": [], "optimizer": []})
            rec["forward"].append(t1 - t0)
            rec["backward"].append(t2 - t1)
            rec["optimizer"].append(t3 - t2)
    return {t: {k: statistics.median(v) for k, v in rec.items()} for t, rec in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="a generated synthetic dataset folder "
                    "(e.g. runs/demo/data after `unihema demo`, or `unihema data generate`)")
    ap.add_argument("--config", default=str(PRESETS / "demo.yaml"),
                    help="run config (default: the demo preset)")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per task (default 8)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per task first")
    ap.add_argument("--json", action="store_true", help="also print one JSON line")
    ap.add_argument("overrides", nargs="*", help="config overrides KEY=VALUE")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    entries = [f"data.{s}.0.root={args.data}" for s in ("train", "val", "test")]
    cfg = load_config(args.config, entries + ["train.output_dir=runs/step_times",
                                              "train.max_minutes=0"] + args.overrides)
    trainer = Trainer(cfg, progress=False)
    stats = time_tasks(trainer, args.steps, args.warmup)
    share = trainer.sampler.task_share()
    step = {t: sum(v.values()) for t, v in stats.items()}
    mean_step = sum(share[t] * step[t] for t in stats)
    rows = []
    for t in sorted(stats, key=lambda x: -share[x] * step[x]):
        v = stats[t]
        rows.append([t, f"{share[t]:.1%}", f"{v['forward']:.3f}", f"{v['backward']:.3f}",
                     f"{v['optimizer']:.3f}", f"{step[t]:.3f}",
                     f"{share[t] * step[t] / mean_step:.1%}"])
    print(f"torch threads: {torch.get_num_threads()}; precision {trainer.precision}; "
          f"median of {args.steps} steps per task (data loading not included); "
          f"mean step {mean_step:.3f} s under the configured task weights\n")
    print(markdown_table([["task", "share of steps", "forward s", "backward s", "optimizer s",
                           "step s", "share of time"]] + rows))
    if args.json:
        print(json.dumps({"mean_step_s": round(mean_step, 4), "tasks": {
            t: {**{k: round(x, 4) for k, x in v.items()}, "share": round(share[t], 4)}
            for t, v in stats.items()}}))


if __name__ == "__main__":
    main()
