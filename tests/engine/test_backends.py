"""The backends of the training loop: plain PyTorch in process, DeepSpeed in one process on
the CPU (a subprocess: DeepSpeed starts a process group), and the loop over them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from unihema.engine.backends import Plain
from unihema.engine.budget import Budget
from unihema.engine.distributed import deepspeed_available
from unihema.engine.loop import Hook, NonFiniteLossError, TrainLoop

from tests._fixtures import REPO, single_thread_env

CPU = torch.device("cpu")


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))


def _data(n):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(4, 8, generator=g), torch.randn(4, 1, generator=g)) for _ in range(n)]


def test_plain_accumulates_clips_and_steps_like_the_textbook_loop():
    data = _data(4)
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    backend = Plain(model, opt, device=CPU, grad_clip=0.5, accum=2)
    for i, (x, y) in enumerate(data):
        backend.backward(((backend.wrapped(x) - y) ** 2).mean())
        backend.step(boundary=i % 2 == 1, any_finite=True)

    ref = _model()
    ref_opt = torch.optim.AdamW(ref.parameters(), lr=1e-2)
    for i in (0, 2):
        for x, y in data[i:i + 2]:
            (((ref(x) - y) ** 2).mean() / 2).backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.5)
        ref_opt.step()
        ref_opt.zero_grad()
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q)
    assert backend.engine is None and not backend.engine_checkpoint


def test_plain_step_without_a_finite_micro_batch_leaves_the_weights():
    model = _model()
    backend = Plain(model, torch.optim.AdamW(model.parameters(), lr=1e-2), device=CPU)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = _data(1)[0]
    ((model(x) - y) ** 2).mean().backward()  # a gradient that must not be applied
    backend.skip()
    backend.step(boundary=True, any_finite=False)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    assert all(p.grad is None for p in model.parameters())


class _Regression(torch.nn.Module):
    """A module with the baselines' ``loss(batch)`` protocol."""

    def __init__(self):
        super().__init__()
        self.net = _model()

    def loss(self, batch):
        return {"loss_fit_mse": ((self.net(batch["x"]) - batch["y"]) ** 2).mean()}


class _Record(Hook):
    def __init__(self):
        self.steps, self.skips, self.ended, self.closed = [], [], None, False

    def on_skip(self, loop, step, task, losses, consecutive):
        self.skips.append((step, consecutive))

    def on_step(self, loop, record):
        self.steps.append(record)

    def on_end(self, loop):
        self.ended = loop.stopped_by

    def close(self):
        self.closed = True


def _loop(model, hooks, steps=3, **kw):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    budget = Budget(max_steps=steps, warmup=1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: budget.lr_factor(s))
    return TrainLoop(losses=model.loss, backend=Plain(model, opt, device=CPU), budget=budget,
                     scheduler=sched, hooks=hooks, **kw)


def _batches(n, bad=()):
    out = []
    for i, (x, y) in enumerate(_data(n)):
        out.append({"task": "fit", "keys": list(range(4)), "x": x,
                    "y": y * float("nan") if i in bad else y})
    return out


def test_the_loop_trains_a_loss_protocol_model_with_hooks():
    model = _Regression()
    hook = _Record()
    loop = _loop(model, [hook], steps=3)
    loop.run(_batches(10))
    assert loop.step == 3 and loop.stopped_by == "steps" == hook.ended and hook.closed
    assert [r.step for r in hook.steps] == [1, 2, 3]
    assert all(r.finite and r.samples == 4 and r.task == "fit" for r in hook.steps)
    assert hook.steps[0].lr == pytest.approx(1e-2) and hook.steps[-1].next_lr < 1e-2
    assert hook.steps[0].total == pytest.approx(hook.steps[0].losses["loss_fit_mse"])


def test_the_loop_skips_non_finite_steps_then_stops():
    model = _Regression()
    hook = _Record()
    loop = _loop(model, [hook], steps=10, max_nonfinite=2,
                 nonfinite_message=lambda n, step, task, v: f"{n} in a row at {step}")
    with pytest.raises(NonFiniteLossError, match="2 in a row at 3") as info:
        loop.run(_batches(10, bad={1, 2}))
    assert isinstance(info.value, FloatingPointError)  # what the baseline CLI catches
    assert hook.skips == [(2, 1), (3, 2)] and [r.finite for r in hook.steps] == [True, False]
    assert loop.skipped == 2 and hook.closed and hook.ended is None


@pytest.mark.skipif(deepspeed_available() is not None, reason="deepspeed does not import")
def test_deepspeed_backend_in_one_cpu_process_matches_plain():
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "engine" / "_ds_backend.py"),
                           str(REPO / "configs" / "deepspeed" / "zero2.json")],
                          cwd=REPO, env=single_thread_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["zero_stage"] == 2 and out["engine_checkpoint"]
    assert out["describe"] == ", DeepSpeed ZeRO-2"
    assert out["max_diff"] < 1e-5, out
