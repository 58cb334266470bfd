"""experiments/bench_trust.py: the whole protocol on a tiny untrained model, and the oracles."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

from unihema.config import load_config
from unihema.modeling.model import UniHema
from unihema.trust.state import TrustState

REPO = Path(__file__).resolve().parents[2]
KNOWN = ["segmented neutrophil", "band neutrophil", "lymphocyte", "monocyte", "eosinophil",
         "basophil"]
WHITE = ["atypical lymphocyte", "myeloblast", "promyelocyte"] + KNOWN


def _tool():
    spec = importlib.util.spec_from_file_location(
        "bench_trust", REPO / "experiments" / "bench_trust.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_fits_scores_and_saves(tiny, synth_root, tmp_path):
    entry = f"{{name: synthetic_smear, root: '{synth_root}', split: train, tasks: [classify], "
    overrides = tiny + [
        "model.tasks=[classify]",
        f"data.train=[{entry}candidates: {{classify: {KNOWN + ['-atypical lymphocyte']}}}}}]",
        f"data.val=[{entry}candidates: {{classify: {KNOWN + ['-atypical lymphocyte']}}}}}]",
        f"data.test=[{entry}candidates: {{classify: {WHITE}}}}}]",
    ]
    torch.manual_seed(0)
    folder = tmp_path / "model"
    UniHema.from_config(load_config(None, overrides)).eval().save_pretrained(folder)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("name: t\n")
    args = ["--model", str(folder), "--config", str(cfg), "--out", str(tmp_path / "out"),
            "--limit", "12", "--val-limit", "12", "--train-limit", "12", "--save", *overrides]
    assert _tool().main(args) == 0
    out = tmp_path / "out"
    results = json.loads((out / "trust_results.json").read_text())
    assert results["meta"]["method"] == "names"
    assert (out / "variants.md").is_file() and (out / "trust_results.md").is_file()
    assert TrustState.load(folder).classes == KNOWN
    # the cached cells are read back
    assert _tool().main(args + ["--reuse"]) == 0
    assert json.loads((out / "timing.json").read_text())["cells"]["val"] <= 12
    # the oracles need only the generator's records; knowing the held-out profiles helps
    oracle = _tool().attribute_oracle(Path(synth_root), KNOWN, WHITE)
    for name in ("known only", "ceiling"):
        if oracle[name]["n_unknown"]:
            assert 0.0 <= oracle[name]["auroc"] <= 1.0
    if oracle["ceiling"]["n_unknown"]:
        assert oracle["ceiling"]["auroc"] >= oracle["known only"]["auroc"] - 0.05
