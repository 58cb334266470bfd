"""Budget: step and wall-clock limits, and the schedule that follows them."""

from __future__ import annotations

import math

import pytest

from unihema.engine.budget import Budget, describe_stop


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_step_limited_schedule_is_warmup_then_cosine():
    b = Budget(max_steps=110, warmup=10, floor=0.05)
    b.start()
    assert b.lr_factor(0) == pytest.approx(0.1)
    assert b.lr_factor(9) == pytest.approx(1.0)
    assert b.lr_factor(10) == pytest.approx(1.0)
    # halfway through the cosine: floor + (1 - floor) / 2
    assert b.lr_factor(60) == pytest.approx(0.05 + 0.95 * 0.5)
    assert b.lr_factor(110) == pytest.approx(0.05)
    assert not b.exhausted(109) and b.exhausted(110)


def test_time_limit_stops_and_drives_the_cosine():
    clock = FakeClock()
    b = Budget(max_steps=10_000, max_seconds=60.0, warmup=0, floor=0.0, clock=clock)
    b.start()
    clock.t += 15.0
    b.sync()
    # a quarter of the time, few steps: the time decides the progress
    assert b.progress(5) == pytest.approx(0.25)
    assert b.lr_factor(5) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25)))
    assert not b.exhausted(5)
    clock.t += 45.0
    b.sync()
    assert b.exhausted(6) and b.lr_factor(6) == pytest.approx(0.0)


def test_resumed_clock_counts_time_already_spent():
    clock = FakeClock()
    b = Budget(max_steps=100, max_seconds=100.0, clock=clock)
    b.start(already=40.0)
    clock.t += 10.0
    assert b.sync() == pytest.approx(50.0)
    assert b.progress(0) == pytest.approx(0.5)


def test_rank0_reading_is_taken_as_given():
    b = Budget(max_steps=100, max_seconds=10.0)
    b.start()
    b.sync(12.5)
    assert b.seconds == 12.5 and b.exhausted(1)


@pytest.mark.parametrize("kwargs", [{"max_steps": 0}, {"max_steps": 5, "max_seconds": -1}])
def test_bad_limits(kwargs):
    with pytest.raises(ValueError):
        Budget(**kwargs)


def test_trainer_stops_when_its_time_is_up(run_config):
    """A budget of 6 ms ends a 50-step run after its first step, with the model saved and the
    seconds recorded in it; the learning rate reached the end of the cosine."""
    import json
    from pathlib import Path

    from unihema.config.loader import load_config
    from unihema.engine.trainer import Trainer

    cfg = load_config(str(run_config("timed", tasks=["classify"], max_steps=50, warmup_steps=0,
                                     save_every=0, max_minutes=0.0001)))
    trainer = Trainer(cfg, progress=False)
    trainer.train()
    assert trainer.step == 1
    assert trainer.scheduler.get_last_lr()[0] == pytest.approx(cfg.train.lr * 0.05)
    saved = json.loads((Path(cfg.train.output_dir) / "model" / "config.json").read_text())
    assert saved["train_seconds"] > 0
    # the run says what actually ran and why it ended: 1 step of 50, stopped by the clock
    assert trainer.stopped_by == saved["stopped_by"] == "time"
    assert trainer.stop_summary() == ("1 step (stopped by the 0.0-minute time budget; "
                                      "the step cap was 50)")
    lines = (Path(cfg.train.output_dir) / "metrics.jsonl").read_text().splitlines()
    end = json.loads(lines[-1])
    assert end["step"] == 1 and end["end"]["stopped_by"] == "time"
    assert end["end"]["max_steps"] == 50


@pytest.mark.parametrize("steps,reason,minutes,text", [
    (1008, "time", 12.0, "1,008 steps (stopped by the 12.0-minute time budget; the step cap "
                         "was 1,200)"),
    (1200, "steps", 12.0, "1,200 steps (stopped at the step cap before the 12.0-minute time "
                          "budget)"),
    (1200, "steps", 0.0, "1,200 steps (stopped at the step cap)"),
    (40, "data", 0.0, "40 steps (stopped when the data ran out; the step cap was 1,200)"),
    (7, None, 12.0, "7 steps (interrupted before its end)"),
])
def test_describe_stop_states_steps_and_reason(steps, reason, minutes, text):
    assert describe_stop(steps, reason, 1200, minutes) == text


def test_describe_stop_rejects_unknown_reason():
    with pytest.raises(ValueError, match="unknown stop reason 'tired'"):
        describe_stop(3, "tired", 10)
