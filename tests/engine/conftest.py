"""Fixtures of the training tests: a tiny run config on the session's synthetic smears."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests import _fixtures


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every training test runs torch on one thread (tests/conftest.py ``one_thread``)."""


@pytest.fixture
def run_config(tmp_path, synth_root):
    """``run_config(name, tasks=..., **train)`` writes a config YAML of the tiny model on the
    synthetic smears (batch 2, 128 px) and returns its path; ``train`` keys override
    ``train.*``."""

    def make(name: str = "run", tasks=("detect", "classify", "vqa"), **train) -> Path:
        source = {"name": "synthetic_smear", "root": str(synth_root), "split": "train",
                  "tasks": list(tasks)}
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(_fixtures.run_config(tmp_path / name, [source], **train),
                                       sort_keys=False))
        return path

    return make
