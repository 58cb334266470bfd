"""Run as a script by test_backends.py (DeepSpeed initialises a process group, kept out of the
test process): a few steps of a small module through the DeepSpeed backend and through the
plain one from the same start; prints the largest parameter difference as JSON."""

import json
import sys

import torch

from unihema.config.loader import load_config
from unihema.engine.backends import DeepSpeed, Plain, build_backend
from unihema.engine.distributed import setup


def run(kind: str, cfg, dist):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    backend = build_backend(model, opt, cfg=cfg, dist=dist, precision="fp32",
                            deepspeed=sys.argv[1] if kind == "deepspeed" else "")
    assert isinstance(backend, DeepSpeed if kind == "deepspeed" else Plain)
    g = torch.Generator().manual_seed(1)
    for micro in range(6):
        x, y = torch.randn(4, 8, generator=g), torch.randn(4, 1, generator=g)
        with backend.autocast():
            loss = ((backend.wrapped(x) - y) ** 2).mean()
        if micro == 2:
            backend.skip()  # a non-finite micro-batch
            any_finite = micro % 2 == 1
        else:
            backend.backward(loss)
            any_finite = True
        backend.step(boundary=micro % 2 == 1, any_finite=any_finite)
    return backend, {k: v.detach().clone() for k, v in model.state_dict().items()}


if __name__ == "__main__":
    cfg = load_config(None, ["data.batch_size=4", "train.grad_accum=2", "train.grad_clip=1.0"])
    dist = setup(deepspeed=True)
    ds, ds_params = run("deepspeed", cfg, dist)
    _, plain_params = run("plain", cfg, dist)
    diff = max(float((ds_params[k] - plain_params[k]).abs().max()) for k in ds_params)
    print(json.dumps({"max_diff": diff, "zero_stage": ds.engine.zero_optimization_stage(),
                      "engine_checkpoint": ds.engine_checkpoint,
                      "describe": ds.describe()}))
