"""Values and helpers shared by the tests (the fixtures built on them are in conftest.py files).

* :data:`TINY`: the tiny model as a config mapping (``model:`` of a run YAML); the override
  list :data:`TINY_MODEL` (``tiny`` fixture) is derived from it, so both name the same sizes.
* :func:`run_config`: a run config mapping of the tiny model (``_base_`` default.yaml).
* :func:`torch_threads`, :func:`single_thread_env`: one thread in this process or in a
  training subprocess (the 2-core CI is shared with other jobs; more threads oversubscribe it
  and make each step many times slower).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]

#: The tiny model, small enough for unit tests on a CPU (seconds per test).
TINY: Dict[str, Any] = {
    "d_model": 32,
    "backbone": {"depth": 18, "width": 8, "norm": "group"},
    "encoder": {"layers": 1, "heads": 2, "ffn": 64},
    "text": {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1,
             "num_heads": 2, "max_target_tokens": 12},
    "fusion": {"heads": 2, "queries": 4, "query_layers": 1},
    "heads": {"dense_dim": 16, "embed_dim": 16},
}
#: Image side of the tiny runs.
TINY_IMAGE_SIZE = 128


def overrides(mapping: Mapping[str, Any], prefix: str) -> List[str]:
    """``key=value`` overrides of a nested mapping (``{"a": {"b": 1}}``, ``"model"`` ->
    ``["model.a.b=1"]``)."""
    out: List[str] = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            out += overrides(value, f"{prefix}.{key}")
        else:
            out.append(f"{prefix}.{key}={value}")
    return out


#: :data:`TINY` as config overrides, with the image size.
TINY_MODEL: List[str] = overrides(TINY, "model") + [f"data.image_size={TINY_IMAGE_SIZE}"]


def run_config(output_dir: Path, train: Sequence[Mapping[str, Any]], *,
               model: Optional[Mapping[str, Any]] = None, image_size: int = TINY_IMAGE_SIZE,
               **train_keys: Any) -> Dict[str, Any]:
    """A run config mapping (to dump as YAML) of the tiny model (``model`` replaces it) on the
    ``train`` sources (``data.train`` entries), batch 2, a short run into ``output_dir``:
    6 steps, warm-up 2, a checkpoint every 2, a log line every step, no evaluation;
    ``train_keys`` override ``train.*``."""
    return {
        "_base_": str(REPO / "configs" / "_base_" / "default.yaml"),
        "model": dict(model if model is not None else TINY),
        "data": {"image_size": image_size, "batch_size": 2, "train": [dict(t) for t in train]},
        "train": {"output_dir": str(output_dir), "max_steps": 6, "warmup_steps": 2,
                  "save_every": 2, "log_every": 1, "eval_every": 0, **train_keys},
    }


@contextlib.contextmanager
def torch_threads(n: int = 1) -> Iterator[None]:
    """torch on ``n`` threads inside the block; the previous number after it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def single_thread_env() -> dict:
    """Environment of training subprocesses: one thread each, offline, the repository
    importable."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env
