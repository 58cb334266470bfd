"""(c) A 2-process DeepSpeed ZeRO-2 run over gloo on the CPU: the ranks end with identical
parameters, and the converted model holds them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from unihema.config.loader import load_config
from unihema.engine.distributed import deepspeed_available, fill_deepspeed_config

from tests._fixtures import REPO, single_thread_env

REASON = deepspeed_available()
needs_deepspeed = pytest.mark.skipif(REASON is not None,
                                     reason=f"deepspeed does not import: {REASON}")


@needs_deepspeed
def test_two_process_zero2_over_gloo_keeps_ranks_identical(run_config):
    config = run_config("zero2", max_steps=4, save_every=2)
    out = Path(load_config(str(config)).train.output_dir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(port),
           str(REPO / "tests" / "engine" / "_ds_ranks.py"), str(config),
           str(REPO / "configs" / "deepspeed" / "zero2.json")]
    t0 = time.perf_counter()
    # its own process group, so that a hang kills the ranks too, not only the launcher
    proc = subprocess.Popen(cmd, cwd=REPO, env=single_thread_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"the 2-process run hung for 300 s:\n{(stdout + stderr)[-4000:]}")
    assert proc.returncode == 0, (stdout + stderr)[-4000:]
    print(f"2-process ZeRO-2 run: {time.perf_counter() - t0:.1f} s")  # shown with pytest -s

    ranks = [load_file(str(out / f"rank{r}.safetensors")) for r in (0, 1)]
    for r in (0, 1):
        with safe_open(str(out / f"rank{r}.safetensors"), "pt") as f:
            meta = f.metadata()
        assert (meta["world_size"], meta["backend"], meta["zero_stage"]) == ("2", "gloo", "2")
        assert int(meta["moved"]) > 0, "training moved the weights"
    assert ranks[0].keys() == ranks[1].keys()
    differ = [k for k in ranks[0] if not torch.equal(ranks[0][k], ranks[1][k])]
    assert not differ, f"ranks disagree on {differ[:5]}"

    # the final model is the conversion of the last DeepSpeed checkpoint: the same weights
    final = load_file(str(out / "model" / "model.safetensors"))
    shared = [k for k in ranks[0] if k in final]  # final also has buffers; ties stored once
    assert len(shared) >= len(ranks[0]) - 3
    assert all(torch.equal(final[k], ranks[0][k]) for k in shared)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    end = records.pop()  # the run's last record says why it ended
    assert end == {"step": 4, "end": {"stopped_by": "steps", "max_steps": 4,
                                      "train_seconds": end["end"]["train_seconds"]}}
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(r["samples_per_s"] > 0 for r in records)
    marker = json.loads((out / "checkpoints" / "step_00000004" / "COMPLETE").read_text())
    assert "rng_rank1.json" in marker["files"]
    assert any(name.startswith("deepspeed/") for name in marker["files"])


def test_fill_deepspeed_config_resolves_every_auto(run_config, tmp_path):
    cfg = load_config(str(run_config("ds_fill", grad_accum=3, grad_clip=0.5)))
    for stage in (1, 2, 3):
        ds = fill_deepspeed_config(REPO / "configs" / "deepspeed" / f"zero{stage}.json", cfg,
                                   world_size=4, precision="bf16")
        assert "auto" not in json.dumps(ds), f"zero{stage}.json keeps an 'auto'"
        assert ds["zero_optimization"]["stage"] == stage
        assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"],
                ds["train_batch_size"]) == (2, 3, 24)
        assert ds["gradient_clipping"] == 0.5
        assert ds["bf16"]["enabled"] is True and ds["fp16"]["enabled"] is False
    fp32 = fill_deepspeed_config(REPO / "configs" / "deepspeed" / "zero2.json", cfg,
                                 world_size=1, precision="fp32")
    assert not fp32["bf16"]["enabled"] and not fp32["fp16"]["enabled"]


def test_fill_deepspeed_config_refuses_conflicts(run_config):
    cfg = load_config(str(run_config("ds_conflict")))
    with pytest.raises(ValueError, match="'train_micro_batch_size_per_gpu' is 16 but the "
                                         "unihema config gives 2"):
        fill_deepspeed_config({"train_micro_batch_size_per_gpu": 16}, cfg, world_size=1,
                              precision="fp32")
    with pytest.raises(ValueError, match="remove the 'optimizer' section"):
        fill_deepspeed_config({"optimizer": {"type": "Adam"}}, cfg, world_size=1,
                              precision="fp32")
    with pytest.raises(FileNotFoundError, match="zero9.json"):
        fill_deepspeed_config(REPO / "configs" / "deepspeed" / "zero9.json", cfg,
                              world_size=1, precision="fp32")
