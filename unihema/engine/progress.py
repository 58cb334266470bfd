"""What a training run reports: console progress, ``metrics.jsonl`` and TensorBoard events.

Console: a tqdm bar with ETA, running per-task losses and samples/s when stdout is a terminal;
otherwise (log files, CI, ``nohup``) one log line every ``log_every`` steps with the same
numbers, so logs are never filled with bar redraws.

``metrics.jsonl`` gets one JSON object per line:

* every ``log_every`` steps (and the last): ``{"step", "task", "lr", "elapsed_s",
  "samples_per_s", "loss": total, "loss_<task>_<term>": weighted terms, "running":
  {task: mean}}``;
* every skipped step: ``{"step", "task", "skipped": "non-finite loss", "losses": {...}}``;
* evaluations: ``{"step", "eval": {...}}``; a resume: ``{"step", "resumed_from": path}``
  (with ``"abandoned": n`` when records were set aside, below).

One history only: a run that starts at step ``s`` (0, or the step of the checkpoint it resumed
from) first moves every record of a later step, left by the history it abandons (a killed run
that had logged past its last checkpoint, a resume from an older checkpoint, a fresh start in a
used folder), and any line cut by a kill, to ``metrics.abandoned.jsonl`` beside it: appended
there first, then ``metrics.jsonl`` is replaced atomically by the records it keeps, so steps
never appear twice and no record is lost.

TensorBoard event files go to ``<output_dir>/tensorboard`` when ``torch.utils.tensorboard``
imports (the ``tensorboard`` package is installed); nothing otherwise. Only rank 0 reports.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional

logger = logging.getLogger("unihema.train")


def _tensorboard(directory: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: JSONL and the console only
        return None
    return SummaryWriter(str(directory))


def _fmt_time(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


ABANDONED = "metrics.abandoned.jsonl"


def rewind(path: Path, step: int) -> int:
    """Keep in the JSONL file ``path`` the records of steps ``<= step`` (none when ``step`` is
    0), moving the others and unparsable lines to ``metrics.abandoned.jsonl``; returns how many
    moved. Appends there first, then replaces ``path`` atomically: a crash in between leaves a
    record twice (once in each file), never in neither."""
    from unihema.utils import atomic_write_text

    path = Path(path)
    if not path.is_file():
        return 0
    keep, moved = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rec_step = json.loads(line).get("step")
        except (ValueError, AttributeError):
            rec_step = None
        ok = isinstance(rec_step, int) and 0 < rec_step <= step
        (keep if ok else moved).append(line)
    if not moved:
        return 0
    with open(path.with_name(ABANDONED), "a", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in moved))
        fh.flush()
        os.fsync(fh.fileno())
    atomic_write_text(path, "".join(line + "\n" for line in keep))
    logger.warning("%s: moved %d record(s) after step %d (an abandoned history) to %s",
                   path, len(moved), step, ABANDONED)
    return len(moved)


class ProgressLogger:
    """Console, JSONL and TensorBoard reporting of one run (a no-op on ranks other than 0).

    Args:
        out: the run folder (``metrics.jsonl`` and ``tensorboard/`` go there).
        total: steps of the whole run; ``start``: the step it starts from (after a resume).
        log_every: JSONL (and non-TTY console) interval in steps.
        enabled: ``False`` on non-main ranks.
        progress: ``False`` silences the console (JSONL and TensorBoard still written).
        tty: force terminal (bar) or plain-log mode; default: ``sys.stdout.isatty()``.
    """

    def __init__(self, out: Path, *, total: int, start: int = 0, log_every: int = 10,
                 enabled: bool = True, progress: bool = True, tty: Optional[bool] = None):
        self.enabled = enabled
        self.total = total
        self.start = start
        self.log_every = max(1, log_every)
        self.console = enabled and progress
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.running: Dict[str, float] = {}
        self.samples = 0
        self.t0 = time.perf_counter()
        self._file = None
        self._bar = None
        self._tb = None
        if not enabled:
            return
        out = Path(out)
        #: records of a later step than ``start`` set aside (see :func:`rewind`)
        self.abandoned = rewind(out / "metrics.jsonl", start)
        self._file = open(out / "metrics.jsonl", "a", encoding="utf-8")
        self._tb = _tensorboard(out / "tensorboard")
        if self.console and self.tty:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=start, desc="train", dynamic_ncols=True,
                             file=sys.stdout)

    # ------------------------------------------------------------------ records
    def write(self, record: Dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.t0
        return self.samples / elapsed if elapsed > 0 else 0.0

    def step(self, step: int, task: str, losses: Dict[str, float], *, lr: float,
             samples: int) -> None:
        """Account one finished optimizer step (``samples``: items over all ranks)."""
        if not self.enabled:
            return
        self.samples += samples
        total = sum(losses.values())
        if math.isfinite(total):
            prev = self.running.get(task)
            self.running[task] = total if prev is None else 0.9 * prev + 0.1 * total
        rate = self.rate()
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix({**{k[:5]: f"{v:.3f}" for k, v in sorted(self.running.items())},
                                   "img/s": f"{rate:.1f}"}, refresh=False)
        if step % self.log_every == 0 or step == self.total:
            elapsed = time.perf_counter() - self.t0
            rec = {"step": step, "task": task, "lr": lr, "elapsed_s": round(elapsed, 2),
                   "samples_per_s": round(rate, 3), "loss": round(total, 6),
                   **{k: round(v, 6) for k, v in losses.items()},
                   "running": {k: round(v, 6) for k, v in sorted(self.running.items())}}
            self.write(rec)
            if self._tb is not None:
                self._tb.add_scalar("train/loss", total, step)
                self._tb.add_scalar("train/lr", lr, step)
                self._tb.add_scalar("train/samples_per_s", rate, step)
                for k, v in losses.items():
                    self._tb.add_scalar(f"train/{k}", v, step)
            if self.console and self._bar is None:
                done = step - self.start
                eta = elapsed / done * (self.total - step) if done else 0.0
                run = " ".join(f"{k}={v:.4f}" for k, v in sorted(self.running.items()))
                logger.info("step %d/%d  %s  lr=%.3g  %.1f samples/s  elapsed %s  ETA %s",
                            step, self.total, run, lr, rate, _fmt_time(elapsed), _fmt_time(eta))

    def skipped(self, step: int, task: str, losses: Dict[str, float], consecutive: int,
                limit: int) -> None:
        logger.warning("step %d (%s): non-finite loss %s, step skipped (%d in a row; the run "
                       "stops at %d)", step, task, losses, consecutive, limit)
        self.write({"step": step, "task": task, "skipped": "non-finite loss",
                    "consecutive": consecutive,
                    "losses": {k: (v if math.isfinite(v) else str(v)) for k, v in losses.items()}})
        if self._bar is not None:
            self._bar.update(1)

    def eval(self, step: int, metrics: Dict[str, Any]) -> None:
        self.write({"step": step, "eval": metrics})

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.close()
        if self._file is not None:
            self._file.close()
        self._bar = self._tb = self._file = None
