"""experiments/probe_trunk.py: the bare trunk trained on the white-cell crops of generated data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(*args):
    return subprocess.run([sys.executable, str(REPO / "experiments" / "probe_trunk.py"), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


@pytest.mark.parametrize("target", ["type", "nucleus_shape"])
def test_trains_and_scores_the_white_cell_crops(synth_root, target):
    done = _run("--data", str(synth_root), "--steps", "3", "--batch", "4", "--target", target)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["target"] == target and out["crops_shown"] == 12
    assert out["train_crops"] > 0 and out["test_crops"] > 0
    assert 0.0 <= out["accuracy"] <= 1.0 and 0.0 <= out["macro_f1"] <= 1.0
    if target == "type":
        assert "band neutrophil" in out["f1"] and len(out["f1"]) == 9


def test_missing_data_and_unknown_attribute_are_clear_errors(synth_root, tmp_path):
    done = _run("--data", str(tmp_path / "nowhere"), "--steps", "1")
    assert done.returncode != 0 and "'" + str(tmp_path / "nowhere") + "' is not a folder" in \
        done.stderr
    (tmp_path / "empty").mkdir()
    done = _run("--data", str(tmp_path / "empty"), "--steps", "1")
    assert done.returncode != 0 and "manifest.json is missing" in done.stderr
    done = _run("--data", str(synth_root), "--steps", "1", "--target", "colour_of_the_sky")
    assert done.returncode != 0 and "no attribute 'colour_of_the_sky'" in done.stderr
