"""The one training loop, shared by the unified model and the specialist baselines.

    loop = TrainLoop(losses=fn, backend=Plain(model, optimizer, device=...), budget=budget,
                     scheduler=scheduler, hooks=[...])
    loop.run(loader)

``losses(batch) -> {"loss_<task>_<term>": scalar}`` is what is trained: the unified model's
weighted forward (:class:`~unihema.engine.trainer.Trainer`) or a specialist's ``loss(batch)``
(:mod:`unihema.baselines.train`). ``accum`` micro-batches make one optimizer step; the
backend (:mod:`unihema.engine.backends`) does the backward and the step; the schedule follows
the :class:`~unihema.engine.budget.Budget` (rank 0's clock decides for every rank), which also
stops the run at its step cap or time budget.

Non-finite losses: a micro-batch whose loss is NaN or inf (on any rank: the ranks agree) gets
no backward pass, and an optimizer step without a finite micro-batch leaves the weights
untouched; it still counts as a step. ``max_nonfinite`` consecutive non-finite micro-batches
raise :class:`NonFiniteLossError`.

Hooks (:class:`Hook`) see every step: logging, checkpoints and evaluation plug in there.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import torch

from unihema.engine.backends import Plain
from unihema.engine.budget import Budget
from unihema.engine.distributed import all_finite, rank0_value
from unihema.engine.utils import to_device

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError, FloatingPointError):
    """``max_nonfinite`` consecutive non-finite losses: the run stops, weights intact."""


@dataclass
class StepRecord:
    """One optimizer step, as the hooks see it.

    Attributes:
        step: optimizer steps done (this one included).
        task: the task of the step's last micro-batch.
        losses: the loss terms of the step's last finite micro-batch (of its last micro-batch
            when none was finite).
        finite: whether a micro-batch of the step was finite (the weights moved).
        lr: the learning rate the step used; ``next_lr`` the one after the scheduler's step.
        samples: items trained in the step, over all ranks.
        total: the summed loss of ``losses`` as the trained tensor held it.
    """

    step: int
    task: str
    losses: Dict[str, float]
    finite: bool
    lr: float
    next_lr: float
    samples: int
    total: float


class Hook:
    """Called by :class:`TrainLoop`; every method is optional."""

    def on_skip(self, loop: "TrainLoop", step: int, task: str, losses: Dict[str, float],
                consecutive: int) -> None:
        """A non-finite micro-batch of optimizer step ``step`` (1-based) was skipped."""

    def on_step(self, loop: "TrainLoop", record: StepRecord) -> None:
        """An optimizer step ended (after the schedule moved on)."""

    def on_end(self, loop: "TrainLoop") -> None:
        """The run ended normally (``loop.stopped_by`` is set)."""

    def close(self) -> None:
        """Always called last, also when the run raised."""


class TrainLoop:
    """Runs optimizer steps over a loader (see the module docstring).

    Args:
        losses: ``batch -> {name: scalar}``, summed into the trained loss.
        backend: :class:`~unihema.engine.backends.Plain` or a subclass.
        budget: step cap, time budget and learning-rate schedule.
        scheduler: the ``LambdaLR`` over ``budget.lr_factor``.
        accum: micro-batches per optimizer step.
        max_nonfinite: consecutive non-finite micro-batches that stop the run.
        hooks: called in order at each step.
        world_size: processes (to count samples).
        nonfinite_message: ``(consecutive, step, task, losses) -> str``, the error's text.
        step: optimizer steps already done (a resumed run).
    """

    def __init__(self, *, losses: Callable[[Mapping[str, Any]], Dict[str, torch.Tensor]],
                 backend: Plain, budget: Budget, scheduler: Any, accum: int = 1,
                 max_nonfinite: int = 10, hooks: Sequence[Hook] = (), world_size: int = 1,
                 nonfinite_message: Optional[Callable[..., str]] = None, step: int = 0) -> None:
        self.losses, self.backend, self.budget, self.scheduler = losses, backend, budget, scheduler
        self.accum, self.max_nonfinite, self.world_size = accum, max_nonfinite, world_size
        self.hooks: List[Hook] = list(hooks)
        self.nonfinite_message = nonfinite_message or (
            lambda n, step, task, values: f"{n} consecutive non-finite losses (last at step "
                                          f"{step}, task {task}: {values})")
        self.step = step
        #: why :meth:`run` ended: "steps", "time" or "data"; None before it ends
        self.stopped_by: Optional[str] = None
        self.skipped = 0

    def run(self, loader: Iterable[Mapping[str, Any]]) -> None:
        """Train over ``loader`` until it ends or the budget is used up."""
        backend, budget = self.backend, self.budget
        backend.wrapped.train()
        budget.start(budget.seconds)
        consecutive = micro = finite_in_step = samples = 0
        step_losses: Dict[str, float] = {}
        step_total = 0.0
        try:
            for batch in loader:
                batch = to_device(batch, backend.device, backend.batch_dtype())
                task = batch["task"]
                with backend.autocast():
                    losses = self.losses(batch)
                total = sum(losses.values())
                values = {k: float(v.detach().float().item()) for k, v in losses.items()}
                value = float(total.detach().float().item())
                finite = all_finite(bool(torch.isfinite(total.detach()).item()), backend.device)
                if finite:
                    consecutive = 0
                    finite_in_step += 1
                    step_losses, step_total = values, value
                    backend.backward(total)
                else:
                    consecutive += 1
                    self.skipped += 1
                    for hook in self.hooks:
                        hook.on_skip(self, self.step + 1, task, values, consecutive)
                    if consecutive >= self.max_nonfinite:
                        raise NonFiniteLossError(self.nonfinite_message(
                            consecutive, self.step + 1, task, values))
                    backend.skip()
                samples += len(batch["keys"]) * self.world_size
                micro += 1
                boundary = micro % self.accum == 0
                backend.step(boundary, finite_in_step > 0)
                if not boundary:
                    continue
                done = (step_losses, step_total) if finite_in_step else (values, value)
                if self._end_step(task, *done, finite_in_step > 0, samples):
                    break
                finite_in_step = samples = 0
            self.stopped_by = self.stop_reason()
            for hook in self.hooks:
                hook.on_end(self)
        finally:
            for hook in self.hooks:
                hook.close()

    def _end_step(self, task: str, losses: Dict[str, float], total: float, finite: bool,
                  samples: int) -> bool:
        """The schedule, the step count and the hooks after an optimizer step; True when the
        budget is used up."""
        self.budget.sync(rank0_value(self.budget.elapsed(), self.backend.device))
        lr = self.scheduler.get_last_lr()[0]
        with warnings.catch_warnings():
            # a skipped step still moves the schedule on, without an optimizer.step()
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler")
            self.scheduler.step()
        self.step += 1
        record = StepRecord(step=self.step, task=task, losses=losses, finite=finite, lr=lr,
                            next_lr=self.scheduler.get_last_lr()[0], samples=samples,
                            total=total)
        for hook in self.hooks:
            hook.on_step(self, record)
        if not self.budget.exhausted(self.step):
            return False
        if self.stop_reason() == "time":
            logger.info("time budget of %.1f min used up at step %d",
                        self.budget.max_seconds / 60.0, self.step)
        return True

    def stop_reason(self) -> str:
        """``steps`` (the step cap), ``time`` (the time budget) or ``data`` (the loader ran
        out first)."""
        if self.step >= self.budget.max_steps:
            return "steps"
        if self.budget.max_seconds > 0 and self.budget.seconds >= self.budget.max_seconds:
            return "time"
        return "data"


__all__ = ["Hook", "NonFiniteLossError", "StepRecord", "TrainLoop"]
