"""Shared fixtures. Tests never touch the network; real datasets are used only when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``../shared/datasets`` beside the repository; skips the test when it is absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATASETS}")
    return SHARED_DATASETS


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A small synthetic dataset generated once per test session (train 10, val 3, test 3)."""
    from unihema.config.schema import SynthConfig
    from unihema.synth import generate_dataset

    root = tmp_path_factory.mktemp("synth")
    cfg = SynthConfig(size=160, train=10, val=3, test=3, seed=7, workers=1)
    generate_dataset(root, cfg, progress=False)
    return root


#: A model small enough for unit tests on a CPU (seconds per test).
TINY_MODEL = [
    "model.d_model=32", "model.backbone.depth=18", "model.backbone.width=8",
    "model.backbone.norm=group", "model.encoder.layers=1", "model.encoder.heads=2",
    "model.encoder.ffn=64", "model.text.d_model=32", "model.text.d_kv=8", "model.text.d_ff=64",
    "model.text.num_layers=1", "model.text.num_decoder_layers=1", "model.text.num_heads=2",
    "model.text.max_target_tokens=12", "model.fusion.heads=2", "model.fusion.queries=4",
    "model.fusion.query_layers=1", "model.heads.dense_dim=16", "model.heads.embed_dim=16",
    "data.image_size=128",
]


@pytest.fixture(scope="session")
def tiny():
    """Config overrides of the tiny test model (a list of ``key=value``)."""
    return list(TINY_MODEL)
