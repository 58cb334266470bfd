"""Training and evaluation of the single-task specialists, on the unified model's data path.

    summary = train_baseline(cfg, kind="detector", out_dir="runs/compare/fcos", max_minutes=15)
    model = load_baseline("runs/compare/fcos")
    results = evaluate_baseline(model, cfg, cfg.data.test)    # unihema.benchmark

What is shared with the unified trainer (:mod:`unihema.engine.trainer`), so that a comparison
differs only in the model:

* data: ``build_task_splits(cfg.data.train, cfg, train=True, tasks=[task])`` (same adapters,
  class relabelling, resizing to ``data.image_size`` and augmentation) and ``build_train_loader``
  (the same sampler and batch sizes: ``data.task_batch_size[task]``, else ``data.batch_size``;
  several training entries of the task are mixed by their weights, as in the unified run);
* the loop: :class:`~unihema.engine.loop.TrainLoop`, the unified model's, over the
  specialist's ``loss(batch)`` with a plain one-process backend on the CPU in fp32
  (:class:`~unihema.engine.backends.Plain`) and a hook writing ``train_log.jsonl``;
* optimisation: ``build_optimizer`` (AdamW, ``train.weight_decay``, no decay on norms and
  biases), ``train.grad_clip``, seeding by ``train.seed``, non-finite losses skipped and
  ``train.max_nonfinite`` of them in a row an error;
* schedule and stopping: :class:`~unihema.engine.budget.Budget` with ``train.warmup_steps``, so a
  time-limited run ends its cosine when its minutes are up;
* scoring: :func:`unihema.benchmark.evaluate_baseline` (the same evaluators, batch size and
  inference loop).

Only the learning rate may differ (``lr``; default ``train.lr``), because the best rate of a
detector trained from scratch is not the unified model's.

Run folder ``out_dir``: ``baseline.json`` + ``model.safetensors`` (:func:`save_baseline`) and
``train_log.jsonl``, one JSON object per optimizer step: ``step``, ``loss`` (sum of the
terms), the ``loss_<task>_<term>`` values, ``lr``, ``seconds`` (training time so far); skipped
steps have ``skipped: "non-finite loss"`` instead of the loss.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from tqdm import tqdm

from unihema.baselines.models import (DEFAULT_ARCH, KINDS, BASELINES, build_baseline, save_baseline)
from unihema.config.schema import Config
from unihema.engine.backends import Plain
from unihema.engine.budget import Budget
from unihema.tasks import get_task
from unihema.engine.loop import Hook, StepRecord, TrainLoop
from unihema.engine.data import TaskSplit, build_task_splits, build_train_loader

logger = logging.getLogger(__name__)

LOG_NAME = "train_log.jsonl"


def class_list(splits: Sequence[TaskSplit], task: str) -> List[str]:
    """The specialist's classes for ``task`` over the training ``splits``.

    Entries with ``classes.<task>`` give their (canonical) list, in order, first. Every other
    name seen in the samples follows, sorted: the adapter's candidate lists
    (``meta["classes_detect"]``, ``label_set``) and the labels themselves (box labels, mask
    class names, the class label). For ``segment`` "background" comes first.
    """
    spec = get_task(task)
    given: List[str] = []
    seen = set()
    for split in splits:
        if split.entry.classes.get(task):
            given.extend(split.samples[0].meta[f"classes_{task}"] if split.samples else [])
            continue
        for s in split.samples:
            seen.update(spec.sample_classes(s))
    names = list(dict.fromkeys(given)) + sorted(n for n in seen if n and n not in given)
    lead = list(spec.leading_classes)
    names = lead + [n for n in names if n not in lead]
    if not names:
        raise ValueError(f"no {task} class names in the training data "
                         f"{[s.name for s in splits]}")
    return names


def _with_lr(cfg: Config, lr: float) -> Config:
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, lr=float(lr)))


class _TrainLog(Hook):
    """``train_log.jsonl`` (one record per optimizer step), the tqdm bar and the last 20
    finite losses (``final_loss``)."""

    def __init__(self, path: Path, bar: Any) -> None:
        self.file, self.bar = open(path, "w", encoding="utf-8"), bar
        self.recent: List[float] = []

    def on_step(self, loop: TrainLoop, record: StepRecord) -> None:
        row: Dict[str, Any] = {"step": record.step, "lr": record.lr,
                               "seconds": round(loop.budget.seconds, 3)}
        if record.finite:
            self.recent = (self.recent + [record.total])[-20:]
            row.update(loss=record.total, **record.losses)
            self.bar.set_postfix(loss=f"{record.total:.4f}", refresh=False)
        else:
            row.update(skipped="non-finite loss",
                       losses={k: str(v) for k, v in record.losses.items()})
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        self.bar.update(1)

    def close(self) -> None:
        self.file.close()
        self.bar.close()


def train_baseline(
    cfg: Config,
    *,
    kind: str,
    arch: Optional[str] = None,
    out_dir: Any,
    max_minutes: Optional[float] = None,
    max_steps: Optional[int] = None,
    lr: Optional[float] = None,
    model_options: Optional[Dict[str, Any]] = None,
    progress: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> Dict[str, Any]:
    """Train one specialist on ``cfg.data.train`` and save it to ``out_dir``.

    Args:
        cfg: the run config (data, batching, augmentation, optimiser settings, seed).
        kind: ``detector``, ``segmenter`` or ``classifier``.
        arch: a :data:`BASELINES` name of that kind (default :data:`DEFAULT_ARCH` ``[kind]``).
        out_dir: the model folder (``baseline.json``, ``model.safetensors``, ``train_log.jsonl``).
        max_minutes: training-time budget; ``None`` = ``cfg.train.max_minutes`` (0 = none).
        max_steps: step budget; ``None`` = ``cfg.train.max_steps``.
        lr: peak learning rate; ``None`` = ``cfg.train.lr``.
        model_options: extra constructor arguments of the arch (e.g. ``{"norm": "batch"}``).
        progress: tqdm bar with the running loss.
        clock: seconds as a float, for the budget (tests pass a fake clock).

    Returns:
        The training summary, also stored as ``train`` in ``baseline.json``: ``kind``, ``arch``,
        ``task``, ``steps``, ``parameters``, ``seconds``, ``final_loss`` (mean of the last 20
        finite steps), ``stopped_by`` (``steps`` or ``time``), ``skipped_steps``, ``lr``,
        ``max_steps``, ``max_minutes``, ``batch_size``, ``image_size``, ``upscale``,
        ``warmup_steps``, ``seed``, ``classes`` and ``datasets``.
    """
    from unihema.engine.utils import build_optimizer, seed_everything

    if kind not in KINDS:
        raise ValueError(f"unknown baseline kind '{kind}'; valid: {', '.join(KINDS)}")
    arch = arch or DEFAULT_ARCH[kind]
    task = KINDS[kind]
    cls = BASELINES.get(arch)
    if cls.kind != kind:
        raise ValueError(f"arch '{arch}' is a {cls.kind}, not a {kind}; {kind}s: "
                         f"{[n for n, c in BASELINES.items() if c.kind == kind]}")
    steps = int(cfg.train.max_steps if max_steps is None else max_steps)
    minutes = float(cfg.train.max_minutes if max_minutes is None else max_minutes)
    lr = float(cfg.train.lr if lr is None else lr)
    if steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {steps}")

    seed_everything(cfg.train.seed)
    splits = build_task_splits(cfg.data.train, cfg, train=True, tasks=[task], seed=cfg.train.seed)
    if not splits:
        raise ValueError(f"no entry of data.train supervises '{task}' (entries: "
                         f"{[f'{e.name}/{e.split}' for e in cfg.data.train]})")
    classes = class_list(splits, task)
    model = build_baseline(arch, kind=kind, classes=classes, image_size=cfg.data.image_size,
                           **(model_options or {}))
    # trunk-only items are the unified model's (data.trunk_items): a baseline's batches are
    # the task's own batch size
    plain = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, trunk_items={}))
    loader, _ = build_train_loader(plain, splits, max_steps=steps)
    optimizer = build_optimizer(model, _with_lr(cfg, lr))
    budget = Budget(max_steps=steps, max_seconds=minutes * 60.0, warmup=cfg.train.warmup_steps,
                    clock=clock)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: budget.lr_factor(s))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    batch_size = cfg.data.task_batch_size.get(task, cfg.data.batch_size)
    logger.info("training %s (%s) on %s: %d classes, batch %d, %d px, lr %.3g, budget %d steps"
                "%s", arch, task, [s.name for s in splits], len(classes), batch_size,
                cfg.data.image_size, lr, steps, f" / {minutes:g} min" if minutes else "")

    log = _TrainLog(out / LOG_NAME, tqdm(total=steps, desc=f"train {arch}",
                                         disable=not progress, dynamic_ncols=True))
    loop = TrainLoop(
        losses=model.loss, budget=budget, scheduler=scheduler, hooks=[log],
        backend=Plain(model, optimizer, device=torch.device("cpu"),
                      grad_clip=cfg.train.grad_clip),
        max_nonfinite=cfg.train.max_nonfinite,
        nonfinite_message=lambda n, step, task, values: (
            f"{arch}: {n} consecutive non-finite losses (last at step {step}: {values}); "
            f"lower the learning rate (now {lr:g})"))
    loop.run(loader)
    step, stopped, recent = loop.step, loop.stopped_by, log.recent
    summary = {
        "kind": kind, "arch": arch, "task": task, "steps": step,
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(budget.seconds, 2),
        "final_loss": sum(recent) / len(recent) if recent else math.nan,
        "stopped_by": stopped, "skipped_steps": loop.skipped, "lr": lr, "max_steps": steps,
        "max_minutes": minutes, "batch_size": batch_size, "image_size": cfg.data.image_size,
        "upscale": cfg.data.upscale, "crop_size": cfg.data.crop_size,
        "warmup_steps": cfg.train.warmup_steps, "seed": cfg.train.seed, "classes": classes,
        "datasets": [s.name for s in splits],
    }
    save_baseline(model, out, {"train": summary})
    logger.info("%s: %d steps in %.1f s (stopped by %s), final loss %.4f; saved to %s", arch,
                step, budget.seconds, stopped, summary["final_loss"], out)
    return summary
