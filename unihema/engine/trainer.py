"""The unified model's training run: one run, all tasks; plain PyTorch, DDP or DeepSpeed.

    unihema train --config configs/quick/synthetic.yaml
    torchrun --nproc_per_node 4 tools/train.py --config CFG
    deepspeed tools/train.py --config CFG --deepspeed configs/deepspeed/zero2.json
    unihema train --config CFG --resume auto

The :class:`Trainer` builds the run from its config (data mixture, model, optimizer, schedule,
backend, objectives, run folder, checkpoints) and trains it with the one loop shared with the
baselines (:class:`~unihema.engine.loop.TrainLoop`); what differs between plain PyTorch, DDP
and DeepSpeed is the backend (:mod:`unihema.engine.backends`); logging, checkpoints and
evaluation are hooks (:mod:`unihema.engine.hooks`).

Each micro-batch is a one-task batch from the mixture; its raw losses, with the terms of the
training objectives (``data.cross_supervision``, ``data.trunk_items``:
:mod:`unihema.engine.objectives`), are weighed with ``train.loss_weights`` (a loss without a
weight is an error). ``train.grad_accum`` micro-batches
make one optimizer step: AdamW with linear warm-up, cosine decay and gradient clipping
(``train.*``; with DeepSpeed the same optimizer and schedule, the engine doing ZeRO partitioning,
reduction, clipping and mixed precision). ``trainer.step`` and ``train.max_steps`` count
optimizer steps. ``train.max_minutes`` adds a wall-clock budget
(:class:`~unihema.engine.budget.Budget`): the run also stops when the time is up, and the cosine
follows the clock so it ends with the budget (rank 0's clock decides for every rank).

Non-finite losses: a micro-batch whose loss is NaN or inf (on any rank: the ranks agree) gets
no backward pass, and an optimizer step without a finite micro-batch leaves the weights
untouched; it is logged (console and ``metrics.jsonl``) and still counts as a step (its data
was consumed and the schedule moves on). ``train.max_nonfinite`` consecutive non-finite
micro-batches stop the run with :class:`NonFiniteLossError`. (Under DeepSpeed the engine still
runs a zero-gradient backward and an optimizer step at learning rate 0 to keep its collective
calls aligned: the weights stay bitwise unchanged, the Adam moments decay by one step.)

Checkpoints (:mod:`unihema.engine.checkpoint`) every ``train.save_every`` steps, the last
``train.keep_last`` kept; ``train.resume`` (``--resume auto|PATH``) continues a run exactly.
The final model goes to ``<output_dir>/model`` through ``save_pretrained``.

``train_images.json`` (:class:`~unihema.data.duplicates.TrainImages`: sha256 and perceptual
hash of every distinct training image) is written to the run folder before the first step and
copied into every checkpoint and the final model, so that ``unihema eval`` can count evaluated
images that the model saw in training.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

import torch

from unihema.config.loader import dump_config, to_dict
from unihema.config.schema import Config
from unihema.engine import checkpoint as ckpt
from unihema.engine.backends import Plain, build_backend
from unihema.engine.budget import Budget, describe_stop
from unihema.data.duplicates import TRAIN_IMAGES
from unihema.data.image_stats import summarise_splits
from unihema.engine.data import (
    build_task_splits,
    build_train_loader,
    check_trunk_items,
    record_train_images,
)
from unihema.engine.distributed import barrier, env_summary, resolve_precision, setup
from unihema.engine.hooks import EveryHook, ProgressHook
from unihema.engine.loop import NonFiniteLossError, TrainLoop
from unihema.engine.objectives import build_objectives
from unihema.engine.progress import ProgressLogger
from unihema.engine.resume import check_resume
from unihema.engine.utils import build_optimizer, seed_everything
from unihema.tasks import get_task
from unihema.modeling.heads import weigh_losses
from unihema.modeling.model import UniHema

logger = logging.getLogger(__name__)

__all__ = ["NonFiniteLossError", "Trainer"]


class Trainer:
    """Owns the model, the data mixture, the optimizer, checkpoints and the run folder.

    Args:
        cfg: the run's config.
        model: an already built model (default: ``UniHema.from_config(cfg)``).
        progress: console progress (bar on a terminal, log lines otherwise).
        deepspeed: DeepSpeed JSON config; default ``cfg.train.deepspeed`` ('' = plain PyTorch).
        resume: '' | 'auto' | checkpoint folder; default ``cfg.train.resume``.
        fresh: with ``resume='auto'``, start from step 0 when every checkpoint is damaged
            (they are moved aside to ``step_N.damaged``) instead of raising ``CheckpointError``.

    The run folder is written only once the data and the checkpoint (and its fit) are checked:
    a run that cannot start leaves ``config.yaml``, checkpoints and ``metrics.jsonl`` as they were.
    """

    def __init__(self, cfg: Config, model: Optional[UniHema] = None, progress: bool = True, *,
                 deepspeed: Optional[str] = None, resume: Optional[str] = None,
                 fresh: bool = False):
        self.cfg = cfg
        self.ds_path = cfg.train.deepspeed if deepspeed is None else deepspeed
        self.dist = setup(deepspeed=bool(self.ds_path))
        self.device = self.dist.device
        seed_everything(cfg.train.seed)
        self.model = model if model is not None else UniHema.from_config(cfg)
        if cfg.model.pretrained:
            self.model = UniHema.from_pretrained(cfg.model.pretrained)
        self.out = Path(cfg.train.output_dir)
        self.ckpt_root = self.out / "checkpoints"
        resume = cfg.train.resume if resume is None else resume
        resume_from = ckpt.resolve(resume, self.ckpt_root, fresh=fresh)
        if resume_from is not None:
            check_resume(resume_from, self.model, cfg, deepspeed=bool(self.ds_path),
                         world_size=self.dist.world_size)
        if not cfg.data.train:
            raise ValueError("data.train is empty: configure at least one training dataset")
        self.splits = build_task_splits(cfg.data.train, cfg, train=True, seed=cfg.train.seed)
        # colour and size of the training images: inference warns on inputs unlike them
        self.image_stats = summarise_splits(self.splits,
                                             lambda t: get_task(t).single_cell)
        if self.dist.is_main:
            t0 = time.perf_counter()
            self.train_images = record_train_images(self.splits, progress=progress)
            logger.info("hashed %d training images into %s in %.1f s",
                        len(self.train_images.sha256), self.out / TRAIN_IMAGES,
                        time.perf_counter() - t0)
        self.accum = cfg.train.grad_accum
        self.loader, self.sampler = build_train_loader(
            cfg, self.splits, max_steps=cfg.train.max_steps * self.accum,
            rank=self.dist.rank, world_size=self.dist.world_size)
        # self.ds_path, not cfg.train.deepspeed: the --deepspeed argument overrides the config
        self.precision = resolve_precision(cfg.train.precision, self.device,
                                           cfg.train.cpu_bf16, bool(self.ds_path))
        self.model.to(self.device)
        self.optimizer = build_optimizer(self.model, cfg)
        self.budget = Budget(max_steps=max(1, cfg.train.max_steps),
                             max_seconds=cfg.train.max_minutes * 60.0,
                             warmup=cfg.train.warmup_steps)
        # a plain function (not a bound method): LambdaLR's state_dict then stores no lambda
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: self.budget.lr_factor(step))
        self.backend: Plain = build_backend(self.model, self.optimizer, cfg=cfg, dist=self.dist,
                                            precision=self.precision, deepspeed=self.ds_path)
        self.ds_config: Dict[str, Any] = getattr(self.backend, "ds_config", {})
        self.progress = progress
        self.trunk_items = check_trunk_items(cfg)
        #: training objectives beside each batch's own loss (data.cross_supervision,
        #: data.trunk_items), computed in the same forward pass
        self.objectives = build_objectives(cfg, self.trunk_items)
        self.loop = TrainLoop(losses=self.losses, backend=self.backend, budget=self.budget,
                              scheduler=self.scheduler, accum=self.accum,
                              max_nonfinite=cfg.train.max_nonfinite,
                              world_size=self.dist.world_size,
                              nonfinite_message=self._nonfinite_message)
        self.check_loss_weights()
        self.check_cross_supervision()
        logger.info("training on %s, precision %s%s", env_summary(self.dist), self.precision,
                    self.backend.describe())
        self.resumed_from: Optional[Path] = None
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        # everything checked and loaded: only now does the run folder change
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            ckpt.set_aside(self.ckpt_root, resume_from, damaged=resume == "auto")
            dump_config(cfg, self.out)
            self.train_images.write(self.out / TRAIN_IMAGES)
        barrier()

    def check_loss_weights(self) -> None:
        """Fail before training when a trained task has no configured loss weight at all."""
        weights = self.cfg.train.loss_weights
        for task in {s.task for s in self.splits}:
            if not any(k.startswith(f"loss_{task}_") for k in weights):
                raise KeyError(f"no train.loss_weights for task '{task}' (expected keys like "
                               f"loss_{task}_<term>); configured: {sorted(weights)}")
            if task in self.trunk_items and not any(k.startswith(f"loss_{task}_trunk_")
                                                    for k in weights):
                raise KeyError(f"data.trunk_items.{task} is set but train.loss_weights has no "
                               f"loss_{task}_trunk_<term> (the trunk-only items' terms); "
                               f"configured: {sorted(weights)}")

    def check_cross_supervision(self) -> None:
        """Fail before training when a trained task's batches would carry the targets of a
        head this model lacks (``data.cross_supervision``)."""
        trained = {s.task for s in self.splits}
        heads = set(self.model.heads)
        for task, others in self.cfg.data.cross_supervision.items():
            missing = [o for o in others if o not in heads]
            if task in trained and missing:
                raise KeyError(f"data.cross_supervision.{task}: {missing} have no head in "
                               f"this model (model.tasks: {sorted(heads)}); drop them or add "
                               f"the tasks")

    # ------------------------------------------------------------------ the backend
    @property
    def step(self) -> int:
        """Optimizer steps done (from the resumed step, if any)."""
        return self.loop.step

    @step.setter
    def step(self, value: int) -> None:
        self.loop.step = int(value)

    @property
    def stopped_by(self) -> Optional[str]:
        """Why the last :meth:`train` call ended (``STOP_REASONS``); None before it ends."""
        return self.loop.stopped_by

    @property
    def wrapped(self) -> torch.nn.Module:
        """The model as the backend runs it (DDP wrapper, DeepSpeed engine or itself)."""
        return self.backend.wrapped

    @property
    def engine(self) -> Any:
        """The DeepSpeed engine, or None."""
        return self.backend.engine

    @property
    def scaler(self) -> torch.amp.GradScaler:
        return self.backend.scaler

    def _autocast(self):
        return self.backend.autocast()

    def losses(self, batch: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """The weighted loss terms of one micro-batch, objectives included (what is
        trained)."""
        raw = self.wrapped(batch, objectives=self.objectives)
        return weigh_losses(raw, self.cfg.train.loss_weights)

    def _nonfinite_message(self, n: int, step: int, task: str, values: Dict[str, float]) -> str:
        return (f"{n} consecutive non-finite losses (last at step {step}, task {task}: "
                f"{values}); the run stops with the weights of the last finite step. Lower "
                f"train.lr, check the data of that task, or resume from {self.ckpt_root}")

    # ------------------------------------------------------------------ the loop
    def train(self, on_eval: Optional[Callable[[int], Dict]] = None, save: bool = True
              ) -> Dict[str, float]:
        """Run up to ``train.max_steps`` optimizer steps (from the resumed step, if any),
        writing checkpoints every ``train.save_every`` steps and, unless ``save=False``,
        the final model to ``output_dir/model``. Returns the running loss per task.

        Raises:
            NonFiniteLossError: ``train.max_nonfinite`` consecutive non-finite losses.
        """
        cfg = self.cfg
        rep = ProgressLogger(self.out, total=cfg.train.max_steps, start=self.step,
                             log_every=cfg.train.log_every, enabled=self.dist.is_main,
                             progress=self.progress)
        if self.resumed_from is not None:
            rep.write({"step": self.step, "resumed_from": str(self.resumed_from),
                       **({"abandoned": rep.abandoned} if rep.abandoned else {})})

        def evaluated(step: int, metrics: Dict) -> None:
            rep.eval(step, metrics)
            self.wrapped.train()

        self.loop.hooks = [
            ProgressHook(rep, max_steps=cfg.train.max_steps,
                         max_nonfinite=cfg.train.max_nonfinite),
            EveryHook(cfg.train.save_every, lambda step: self.save_checkpoint()),
            EveryHook(cfg.train.eval_every if on_eval else 0, on_eval, evaluated)]
        self.loop.run(self.loader)
        if save:
            self.save(self.out / "model")
        logger.info("trained to step %d in %.1f s: %s", self.step,
                    time.perf_counter() - rep.t0, self.stop_summary())
        return dict(rep.running)

    def stop_summary(self) -> str:
        """The steps actually trained and why training stopped, in words, e.g.
        ``"1,008 steps (stopped by the 12.0-minute time budget; the step cap was 1,200)"``."""
        return describe_stop(self.step, self.stopped_by, self.cfg.train.max_steps,
                             self.cfg.train.max_minutes)

    # ------------------------------------------------------------------ checkpoints
    def _state(self) -> Dict[str, Any]:
        consumed = self.step * self.accum
        return {
            "step": self.step,
            "micro_batches": consumed,
            "train_seconds": self.budget.seconds,
            "world_size": self.dist.world_size,
            "deepspeed": self.backend.engine_checkpoint,
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "sampler": self.loader.batch_sampler.state_at(consumed),
            "config": to_dict(self.cfg),
            "extra": self._extra(),
        }

    def save_checkpoint(self) -> Path:
        """Write the checkpoint of the current step (every rank must call it)."""
        tmp_path = self.ckpt_root / f".tmp_step_{self.step:08d}"
        if self.dist.is_main:
            if tmp_path.exists():
                shutil.rmtree(tmp_path)
            tmp_path.mkdir(parents=True)
        barrier()
        ckpt.write_rank_files(tmp_path, self.dist.rank)
        model, optim_state = self.backend.save(tmp_path)
        if self.dist.is_main:
            self.train_images.write(tmp_path / TRAIN_IMAGES)
            ckpt.write_main_files(tmp_path, step=self.step, state=self._state(),
                                  model=model, optimizer_state=optim_state)
        barrier()
        final = ckpt.step_dir(self.ckpt_root, self.step)
        if self.dist.is_main:
            final = ckpt.finalize(tmp_path, self.ckpt_root, self.step, self.cfg.train.keep_last)
            logger.info("checkpoint %s", final)
        barrier()
        return final

    def load_checkpoint(self, directory: Path) -> None:
        """Restore everything :meth:`save_checkpoint` wrote, exactly."""
        directory = Path(directory)
        check_resume(directory, self.model, self.cfg,
                     deepspeed=self.backend.engine_checkpoint, world_size=self.dist.world_size)
        state = ckpt.read_state(directory)
        self.backend.load(directory)
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        self.step = int(state["step"])
        self.budget.sync(float(state.get("train_seconds", 0.0)))
        remaining = max(0, self.cfg.train.max_steps - self.step) * self.accum
        self.sampler.num_batches = remaining
        js, tensors = ckpt.read_rank(directory, self.dist.rank)
        ckpt.set_rng_state(js, tensors)
        self.resumed_from = directory
        logger.info("resumed from %s at step %d", directory, self.step)

    # ------------------------------------------------------------------ final model
    def default_classes(self) -> Dict[str, List[str]]:
        """Class lists of the first training source of each dense task: what the saved model
        detects and segments when a user names no classes."""
        out: Dict[str, List[str]] = {}
        for s in self.splits:
            if s.task in out or not s.samples:
                continue
            names = get_task(s.task).default_classes(s.samples[0])
            if names:
                out[s.task] = list(names)
        return out

    def _extra(self) -> Dict[str, Any]:
        return {"train_steps": self.step, "train_seconds": round(self.budget.seconds, 1),
                "stopped_by": self.stopped_by,
                "image_size": self.cfg.data.image_size,
                "upscale": self.cfg.data.upscale, "crop_size": self.cfg.data.crop_size,
                "classes": self.default_classes(), "image_stats": self.image_stats}

    def save(self, directory: Path) -> Path:
        """``save_pretrained`` plus what inference needs: image size and class lists.

        Under DeepSpeed every rank must call it: the engine's checkpoint is written (a
        collective operation) and rank 0 converts it to fp32 weights, whatever the ZeRO stage
        and precision.
        """
        directory = Path(directory)
        if not self.backend.engine_checkpoint:
            if self.dist.is_main:
                self.model.save_pretrained(directory, extra=self._extra())
                self.train_images.write(directory / TRAIN_IMAGES)
            barrier()
            return directory
        from unihema.engine.convert import convert_checkpoint

        final = ckpt.step_dir(self.ckpt_root, self.step)
        if not (final / ckpt.MARKER).is_file():
            final = self.save_checkpoint()
        if self.dist.is_main:
            convert_checkpoint(final, directory)
        barrier()
        return directory
