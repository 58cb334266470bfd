"""Budget: step and wall-clock limits, and the schedule that follows them."""

from __future__ import annotations

import math

import pytest

from unihema.engine.budget import Budget


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
