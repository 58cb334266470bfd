"""Shared fixtures (values and helpers: tests/_fixtures.py). Tests never touch the network;
real datasets are used only when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests._fixtures import TINY_MODEL, torch_threads

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


@pytest.fixture(scope="session")
def tiny():
    """Config overrides of the tiny test model (a list of ``key=value``)."""
    return list(TINY_MODEL)


@pytest.fixture
def one_thread():
    """torch on one thread during the test (the 2-core CI is shared with other jobs; two
    threads per process oversubscribe it). ``tests/engine`` and ``tests/baselines`` use it for
    every test."""
    with torch_threads(1):
        yield
