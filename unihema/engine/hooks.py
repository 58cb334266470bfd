"""Hooks of the unified model's training run (:class:`~unihema.engine.loop.Hook`): logging,
checkpoints and evaluation at their intervals. The time budget is the loop's
:class:`~unihema.engine.budget.Budget` itself.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from unihema.engine.loop import Hook, StepRecord, TrainLoop
from unihema.engine.progress import ProgressLogger


class ProgressHook(Hook):
    """Console, ``metrics.jsonl`` and TensorBoard through a
    :class:`~unihema.engine.progress.ProgressLogger`; the run's ``end`` record."""

    def __init__(self, rep: ProgressLogger, *, max_steps: int, max_nonfinite: int) -> None:
        self.rep, self.max_steps, self.max_nonfinite = rep, max_steps, max_nonfinite

    def on_skip(self, loop: TrainLoop, step: int, task: str, losses: Dict[str, float],
                consecutive: int) -> None:
        self.rep.skipped(step, task, losses, consecutive, self.max_nonfinite)

    def on_step(self, loop: TrainLoop, record: StepRecord) -> None:
        self.rep.step(record.step, record.task, record.losses, lr=record.next_lr,
                      samples=record.samples)

    def on_end(self, loop: TrainLoop) -> None:
        self.rep.write({"step": loop.step, "end": {"stopped_by": loop.stopped_by,
                                                   "train_seconds": round(loop.budget.seconds, 1),
                                                   "max_steps": self.max_steps}})

    def close(self) -> None:
        self.rep.close()


class EveryHook(Hook):
    """Calls ``fn(step)`` every ``every`` optimizer steps (0 = never); ``then(step, result)``
    after it (e.g. log the metrics and put the model back in training mode)."""

    def __init__(self, every: int, fn: Callable[[int], Any],
                 then: Optional[Callable[[int, Any], None]] = None) -> None:
        self.every, self.fn, self.then = int(every), fn, then

    def on_step(self, loop: TrainLoop, record: StepRecord) -> None:
        if self.every and record.step % self.every == 0:
            result = self.fn(record.step)
            if self.then is not None:
                self.then(record.step, result)


__all__ = ["EveryHook", "ProgressHook"]
