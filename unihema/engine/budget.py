"""Training budgets in steps and wall-clock time, and the learning-rate schedule over them.

A run ends at ``max_steps`` or, when ``max_seconds > 0``, when that much training time has
passed, whichever comes first. The schedule follows the same clock: a linear warm-up over
``warmup`` steps, then a cosine from 1 down to ``floor`` over the *progress* of the run::

    progress(step) = max((step - warmup) / (max_steps - warmup), elapsed / max_seconds)

so a time-limited run reaches the end of its cosine when its time is up, however fast or slow
the machine is. This is how models are compared "at the same wall-clock budget": each gets the
same seconds and a schedule that fits them (``tools/compare_specialists.py``).

A time-limited run is not step-for-step reproducible (the number of steps depends on the
machine's speed); a step-limited run (``max_seconds = 0``) is.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Optional


class Budget:
    """Progress and stopping rule of one training run.

    Args:
        max_steps: optimizer steps at most (>= 1).
        max_seconds: wall-clock seconds of training at most; 0 = no time limit.
        warmup: linear warm-up steps of the learning rate.
        floor: final learning-rate multiplier of the cosine.
        clock: seconds as a float (``time.perf_counter``; tests pass a fake clock).
    """

    def __init__(self, *, max_steps: int, max_seconds: float = 0.0, warmup: int = 0,
                 floor: float = 0.05, clock: Callable[[], float] = time.perf_counter) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        if max_seconds < 0:
            raise ValueError(f"max_seconds must be >= 0 (0 = no time limit), got {max_seconds}")
        self.max_steps = int(max_steps)
        self.max_seconds = float(max_seconds)
        self.warmup = max(0, int(warmup))
        self.floor = float(floor)
        self.clock = clock
        self._t0: Optional[float] = None
        self._offset = 0.0
        #: elapsed seconds as last agreed on (see :meth:`sync`); used by the schedule
        self.seconds = 0.0

    def start(self, already: float = 0.0) -> None:
        """Start the clock; ``already`` seconds were spent before (a resumed run)."""
        self._t0 = self.clock()
        self._offset = float(already)
        self.seconds = self._offset

    def elapsed(self) -> float:
        """Seconds of training so far (0 before :meth:`start`)."""
        if self._t0 is None:
            return self._offset
        return self._offset + self.clock() - self._t0

    def sync(self, seconds: Optional[float] = None) -> float:
        """Read the clock into :attr:`seconds` (or take ``seconds``, e.g. rank 0's reading
        broadcast to every process so all of them stop at the same step)."""
        self.seconds = self.elapsed() if seconds is None else float(seconds)
        return self.seconds

    def progress(self, step: int) -> float:
        """Fraction of the run done after ``step`` steps, in [0, 1]."""
        by_steps = (step - self.warmup) / max(1, self.max_steps - self.warmup)
        by_time = self.seconds / self.max_seconds if self.max_seconds > 0 else 0.0
        return min(1.0, max(0.0, by_steps, by_time))

    def exhausted(self, step: int) -> bool:
        """True when ``step`` reached ``max_steps`` or the time is up."""
        return step >= self.max_steps or (self.max_seconds > 0 and self.seconds >= self.max_seconds)

    def lr_factor(self, step: int) -> float:
        """Learning-rate multiplier for ``step`` (a ``LambdaLR`` lambda)."""
        if step < self.warmup:
            return (step + 1) / max(1, self.warmup)
        t = self.progress(step)
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * t))


__all__ = ["Budget"]


#: why a run ended: its step cap, its time budget, or its data (a loader that ran out first)
STOP_REASONS = ("steps", "time", "data")


def describe_stop(steps: int, stopped_by: Optional[str], max_steps: int,
                  max_minutes: float = 0.0) -> str:
    """The steps a run actually trained and why it stopped, for reports and logs.

    ``describe_stop(1008, "time", 1200, 12.0)`` ->
    ``"1,008 steps (stopped by the 12.0-minute time budget; the step cap was 1,200)"``.
    """
    if stopped_by == "time":
        why = f"stopped by the {max_minutes:.1f}-minute time budget; the step cap was {max_steps:,}"
    elif stopped_by == "steps":
        why = (f"stopped at the step cap before the {max_minutes:.1f}-minute time budget"
               if max_minutes > 0 else "stopped at the step cap")
    elif stopped_by == "data":
        why = f"stopped when the data ran out; the step cap was {max_steps:,}"
    elif stopped_by is None:
        why = "interrupted before its end"
    else:
        raise ValueError(f"unknown stop reason {stopped_by!r}; expected one of {STOP_REASONS}")
    return f"{steps:,} step{'' if steps == 1 else 's'} ({why})"
