"""Fault tests of the training loop: killed runs resume exactly, damaged checkpoints are skipped,
non-finite losses never reach the weights."""

from __future__ import annotations

import json
import logging
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from unihema.cli import main
from unihema.config.loader import load_config
from unihema.engine import checkpoint as ckpt
from unihema.engine.trainer import NonFiniteLossError, Trainer

from tests._fixtures import REPO, single_thread_env


def _train_cmd(config: Path, *extra: str):
    return [sys.executable, "-m", "unihema", "train", "--config", str(config), "--no-progress",
            *extra]


def _steps_logged(metrics: Path) -> int:
    if not metrics.is_file():
        return 0
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines() if line]
    return max(steps, default=0)


def _weights(run: Path):
    return load_file(str(run / "model" / "model.safetensors"))


def _assert_bitwise_equal(a, b):
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def test_sigkilled_run_resumes_to_the_same_weights(run_config):
    """(a) SIGKILL at a random step after the first checkpoint, then ``--resume auto``: the
    final weights equal, bit for bit, those of an uninterrupted run of the same length (CPU,
    one thread per process, the same kernels in both runs)."""
    steps = 12
    ref_cfg = run_config("reference", max_steps=steps, save_every=3)
    kill_cfg = run_config("killed", max_steps=steps, save_every=3)
    env = single_thread_env()
    reference = subprocess.Popen(_train_cmd(ref_cfg), cwd=REPO, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = subprocess.Popen(_train_cmd(kill_cfg), cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_at = random.Random().randint(4, steps - 2)  # after the step-3 checkpoint
    metrics = Path(load_config(str(kill_cfg)).train.output_dir) / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while _steps_logged(metrics) < kill_at and killed.poll() is None:
        assert time.monotonic() < deadline, "the run to kill made no progress in 120 s"
        time.sleep(0.005)
    assert killed.poll() is None, f"the run finished before the kill at step {kill_at}"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    run = metrics.parent
    assert not (run / "model").exists(), "a killed run must not have written its final model"
    reached = _steps_logged(metrics)
    assert kill_at <= reached < steps, (kill_at, reached)

    resumed = subprocess.run(_train_cmd(kill_cfg, "--resume", "auto"), cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err.decode()[-3000:]

    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    resumes = [r for r in records if "resumed_from" in r]
    assert len(resumes) == 1 and resumes[0]["step"] >= 3 and resumes[0]["step"] % 3 == 0
    assert resumes[0]["step"] <= reached
    _assert_bitwise_equal(_weights(run), _weights(Path(load_config(str(ref_cfg))
                                                       .train.output_dir)))


def test_truncated_checkpoint_is_skipped_for_the_previous_one(run_config, caplog):
    """(b) the newest checkpoint lost its tail: ``resume=auto`` warns, takes the previous one
    and still ends on the weights of the uninterrupted run."""
    cfg = load_config(str(run_config("trunc", max_steps=4, save_every=2)))
    Trainer(cfg, progress=False).train()
    run = Path(cfg.train.output_dir)
    expected = _weights(run)
    newest = ckpt.step_dir(run / "checkpoints", 4)
    opt = newest / ckpt.OPTIMIZER
    opt.write_bytes(opt.read_bytes()[: opt.stat().st_size // 2])

    with caplog.at_level(logging.WARNING, logger="unihema.engine.checkpoint"):
        assert ckpt.find_latest(run / "checkpoints") == ckpt.step_dir(run / "checkpoints", 2)
    assert "step_00000004" in caplog.text and "optimizer.safetensors" in caplog.text

    resumed = Trainer(cfg, progress=False, resume="auto")
    assert resumed.step == 2 and resumed.resumed_from.name == "step_00000002"
    resumed.train()
    _assert_bitwise_equal(_weights(run), expected)


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_nonfinite_losses_skip_steps_then_stop_the_run(run_config):
    """(d) every classification loss NaN (a forward hook; the config refuses a NaN loss
    weight): each step is skipped and logged, the third in a row stops the run, and no weight
    has moved."""
    cfg = load_config(str(run_config("nan", tasks=["classify"], max_steps=10, max_nonfinite=3,
                                     save_every=0)))
    trainer = Trainer(cfg, progress=False)
    trainer.model.register_forward_hook(
        lambda module, args, output: {k: v * float("nan") for k, v in output.items()})
    before = _params(trainer.model)
    with pytest.raises(NonFiniteLossError, match="3 consecutive non-finite losses"):
        trainer.train()
    _assert_bitwise_equal(_params(trainer.model), before)
    assert not (Path(cfg.train.output_dir) / "model").exists()
    records = [json.loads(line) for line in
               (Path(cfg.train.output_dir) / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r.get("skipped")] == [1, 2, 3]
    assert records[0]["losses"]["loss_classify_ce"] == "nan"


def test_one_infinite_loss_is_skipped_and_training_goes_on(run_config):
    """(d) an inf loss injected through a forward hook at the third step: that step leaves
    the weights as they were, is logged, and the run finishes."""
    cfg = load_config(str(run_config("inf", tasks=["classify"], max_steps=5, save_every=0)))
    trainer = Trainer(cfg, progress=False)
    calls = {"n": 0}
    snapshots = {}

    def hook(module, args, output):
        calls["n"] += 1
        if calls["n"] == 3:
            snapshots["before"] = _params(module)
            return {k: v * float("inf") for k, v in output.items()}
        if calls["n"] == 4:
            snapshots["after"] = _params(module)
        return output

    trainer.model.register_forward_hook(hook)
    trainer.train(save=False)
    assert trainer.step == 5
    _assert_bitwise_equal(snapshots["after"], snapshots["before"])
    optimizer_steps = {int(s["step"].item()) for s in trainer.optimizer.state.values()}
    assert optimizer_steps == {4}, "4 of 5 steps updated the weights"
    records = [json.loads(line) for line in
               (Path(cfg.train.output_dir) / "metrics.jsonl").read_text().splitlines()]
    skipped = [r for r in records if r.get("skipped")]
    assert [r["step"] for r in skipped] == [3] and skipped[0]["losses"]["loss_classify_ce"] == "inf"


def test_cli_reports_the_stop_clearly(run_config, capsys):
    cfg = run_config("nan_cli", tasks=["classify"], max_steps=10, max_nonfinite=2, save_every=0)
    code = main(["train", "--config", str(cfg), "--no-progress",
                 "train.loss_weights.loss_classify_ce=.inf"])
    assert code == 3
    err = capsys.readouterr().err
    assert "2 consecutive non-finite losses" in err and "Lower train.lr" in err
