"""experiments/bench_smear.py: the whole-smear benchmark's parts on a tiny model, small fields
and the truth boxes (so every figure is exact), and the GPU script's CPU dry run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("bench_smear",
                                                  REPO / "experiments" / "bench_smear.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def pipe(tiny, tmp_path_factory):
    from unihema.api import UniHemaPipeline
    from unihema.config import load_config
    from unihema.modeling.model import UniHema

    torch.manual_seed(0)
    cfg = load_config(None, tiny)
    cfg.model.reading.detect = ["red blood cell", "white blood cell", "platelet"]
    path = tmp_path_factory.mktemp("bench") / "model"
    UniHema.from_config(cfg).save_pretrained(path, extra={"image_size": 128})
    return UniHemaPipeline.from_pretrained(path)


def test_accuracy_with_the_truth_boxes_counts_every_cell_once(pipe):
    tool = _tool()
    r = tool.bench_accuracy(pipe, n_fields=1, size=(480, 360), scan_size=(900, 600),
                            truth_boxes=True)
    for part in ("fields", "scan"):
        for lineage in ("red blood cell", "white blood cell", "platelet"):
            row = r[part]["lineages"][lineage]
            assert row["truth"] > 0 and row["found"] == row["truth"], (part, lineage, row)
            assert row["error_pct"] == 0.0
    seams = r["scan"]["seam_cells"]["all"]
    assert r["scan"]["tiles"] > 1 and seams["cells"] > 0
    assert seams["found_once"] == seams["cells"]  # none missed, none doubled
    assert "| scan | red blood cell |" in tool.report_accuracy(r)


def test_scale_robustness_rows_and_spread(pipe):
    tool = _tool()
    r = tool.bench_scale(pipe, size=(600, 450), factors=(1.0, 2.0), truth_boxes=True)
    assert len(r["runs"]) == 4  # 36 red cells: enough for an estimate (20)
    est = [x for x in r["runs"] if not x["scale_given"]]
    for x in est:  # the estimate from the red cells lands near the truth
        assert abs(x["scale_used"]["um_per_px"] / x["um_per_px"] - 1) < 0.1
    assert r["spread_pct"]["red blood cell"]["all"] == 0.0


def test_gpu_dry_run_writes_its_figures(tmp_path):
    out = tmp_path / "r.json"
    done = subprocess.run([sys.executable, str(REPO / "experiments" / "bench_smear.py"),
                           "--only", "gpu", "--dry-run", "--threads", "1", "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads(out.read_text())["gpu"]
    assert r["device"] == "cpu" and r["fields"] == 2 and r["fields_per_s"] > 0
    assert "| cpu | tiny (dry run) |" in done.stdout
