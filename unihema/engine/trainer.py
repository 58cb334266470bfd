"""The training loop: one run, all tasks, plain PyTorch on CPU or one GPU.

    unihema train --config configs/quick/demo.yaml
    python tools/train.py --config configs/quick/demo.yaml train.max_steps=200

Each step draws a one-task batch from the mixture, computes that task's raw losses, weighs them
with ``train.loss_weights`` (a loss without a weight is an error), and takes an AdamW step with
linear warm-up, cosine decay and gradient clipping. A non-finite loss skips the step. Losses go
to a progress bar (running mean per task) and to ``<output_dir>/metrics.jsonl``; the final
model is written with ``save_pretrained`` to ``<output_dir>/model``.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from tqdm import tqdm

from unihema.config.loader import dump_config
from unihema.config.schema import Config
from unihema.engine.data import build_task_splits, build_train_loader
from unihema.modeling.heads import weigh_losses
from unihema.modeling.model import UniHema

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """AdamW; norms, biases, gates, embeddings and scales get no weight decay."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "embed" in name or "norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.train.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.train.lr, betas=(0.9, 0.98))


def warmup_cosine(warmup: int, total: int, floor: float = 0.05) -> Callable[[int], float]:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine down to ``floor``."""

    def fn(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(1, warmup)
        t = (step - warmup) / max(1, total - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return fn


class Trainer:
    """Owns the model, the data mixture, the optimizer and the run folder."""

    def __init__(self, cfg: Config, model: Optional[UniHema] = None, progress: bool = True):
        self.cfg = cfg
        seed_everything(cfg.train.seed)
        self.model = model if model is not None else UniHema.from_config(cfg)
        if cfg.model.pretrained:
            self.model = UniHema.from_pretrained(cfg.model.pretrained)
        self.out = Path(cfg.train.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, self.out)
        if not cfg.data.train:
            raise ValueError("data.train is empty: configure at least one training dataset")
        self.splits = build_task_splits(cfg.data.train, cfg, train=True, seed=cfg.train.seed)
        self.loader, self.sampler = build_train_loader(cfg, self.splits,
                                                       max_steps=cfg.train.max_steps)
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(cfg.train.warmup_steps, cfg.train.max_steps))
        self.progress = progress
        self.step = 0
        self.check_loss_weights()

    def check_loss_weights(self) -> None:
        """Fail before training when a trained task has no configured loss weight at all."""
        weights = self.cfg.train.loss_weights
        for task in {s.task for s in self.splits}:
            if not any(k.startswith(f"loss_{task}_") for k in weights):
                raise KeyError(f"no train.loss_weights for task '{task}' (expected keys like "
                               f"loss_{task}_<term>); configured: {sorted(weights)}")

    def train(self, on_eval: Optional[Callable[[int], Dict]] = None, save: bool = True
              ) -> Dict[str, float]:
        """Run ``train.max_steps`` steps and (unless ``save=False``) write ``output_dir/model``;
        returns the last running losses per task."""
        cfg = self.cfg
        model = self.model.train()
        log_path = self.out / "metrics.jsonl"
        running: Dict[str, float] = {}
        skipped = 0
        t0 = time.perf_counter()
        bar = tqdm(total=cfg.train.max_steps, desc="train", disable=not self.progress,
                   dynamic_ncols=True)
        with open(log_path, "a", encoding="utf-8") as log:
            for batch in self.loader:
                task = batch["task"]
                losses = weigh_losses(model(batch), cfg.train.loss_weights)
                total = sum(losses.values())
                if not torch.isfinite(total):
                    skipped += 1
                    logger.warning("step %d (%s): non-finite loss %s, step skipped", self.step,
                                   task, {k: v.detach().item() for k, v in losses.items()})
                    self.optimizer.zero_grad(set_to_none=True)
                    if skipped > 20:
                        raise RuntimeError("more than 20 non-finite losses; stopping the run "
                                           "before the weights are corrupted (lower train.lr?)")
                else:
                    self.optimizer.zero_grad(set_to_none=True)
                    total.backward()
                    if cfg.train.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
                    self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                value = total.detach().item()
                running[task] = value if task not in running else 0.9 * running[task] + 0.1 * value
                bar.update(1)
                bar.set_postfix({k[:5]: f"{v:.3f}" for k, v in sorted(running.items())})
                if self.step % cfg.train.log_every == 0 or self.step == cfg.train.max_steps:
                    rec = {"step": self.step, "task": task, "lr": self.scheduler.get_last_lr()[0],
                           "elapsed_s": round(time.perf_counter() - t0, 2),
                           **{k: round(v.detach().item(), 5) for k, v in losses.items()}}
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
                if on_eval and cfg.train.eval_every and self.step % cfg.train.eval_every == 0:
                    metrics = on_eval(self.step)
                    log.write(json.dumps({"step": self.step, "eval": metrics}) + "\n")
                    model.train()
        bar.close()
        if save:
            self.save(self.out / "model")
        logger.info("trained %d steps in %.1f s (%d skipped)", self.step,
                    time.perf_counter() - t0, skipped)
        return running

    def default_classes(self) -> Dict[str, List[str]]:
        """Class lists of the first training source of each dense task: what the saved model
        detects and segments when a user names no classes."""
        out: Dict[str, List[str]] = {}
        for s in self.splits:
            if s.task in out or not s.samples:
                continue
            first = s.samples[0]
            if s.task == "detect" and first.meta.get("classes_detect"):
                out["detect"] = list(first.meta["classes_detect"])
            elif s.task == "segment" and first.mask_values:
                out["segment"] = [first.mask_values[v] for v in sorted(first.mask_values)]
        return out

    def save(self, directory: Path) -> Path:
        """``save_pretrained`` plus what inference needs: image size and class lists."""
        extra = {"train_steps": self.step, "image_size": self.cfg.data.image_size,
                 "upscale": self.cfg.data.upscale, "classes": self.default_classes()}
        return self.model.save_pretrained(directory, extra=extra)
