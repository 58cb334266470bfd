"""Fixtures of the training tests: a tiny run config on the session's synthetic smears."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]

#: The tiny model as a YAML mapping (the same sizes as tests/conftest.py TINY_MODEL).
TINY = {
    "d_model": 32,
    "backbone": {"depth": 18, "width": 8, "norm": "group"},
    "encoder": {"layers": 1, "heads": 2, "ffn": 64},
    "text": {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1,
             "num_heads": 2, "max_target_tokens": 12},
    "fusion": {"heads": 2, "queries": 4, "query_layers": 1},
    "heads": {"dense_dim": 16, "embed_dim": 16},
}


def single_thread_env() -> dict:
    """Environment of training subprocesses: one thread each (2-core CI shared by runs),
    offline, the repository importable."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(autouse=True)
def one_thread():
    """Training tests run torch on one thread: on a 2-core machine shared with other jobs, two
    threads per process oversubscribe the cores and make each step many times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def run_config(tmp_path, synth_root):
    """``run_config(name, tasks=..., **train)`` writes a config YAML of the tiny model on the
    synthetic smears (batch 2, 128 px) and returns its path; ``train`` keys override
    ``train.*``."""

    def make(name: str = "run", tasks=("detect", "classify", "vqa"), **train) -> Path:
        cfg = {
            "_base_": str(REPO / "configs" / "_base_" / "default.yaml"),
            "model": TINY,
            "data": {"image_size": 128, "batch_size": 2,
                     "train": [{"name": "synthetic_smear", "root": str(synth_root),
                                "split": "train", "tasks": list(tasks)}]},
            "train": {"output_dir": str(tmp_path / name), "max_steps": 6, "warmup_steps": 2,
                      "save_every": 2, "log_every": 1, "eval_every": 0, **train},
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    return make
