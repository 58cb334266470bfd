"""experiments/cross_source_table.py: in-source, cross-source and the drop, per model and metric."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "cross_source_table", REPO / "experiments" / "cross_source_table.py")
cross_source_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cross_source_table)


def test_rows_pair_each_model_with_its_own_and_the_other_subset(tmp_path, capsys):
    key = "z/{}[subset=Dataset {}]"
    entries = [{"task": t, "key": key.format(s, d), "items": n}
               for t in ("classify", "segment") for s, d, n in
               (("test", 1, 60), ("all", 1, 300), ("test", 2, 20), ("all", 2, 100))]
    res = {"meta": {"models": {"d1/unified": {}, "d2/classifier": {}}, "entries": entries},
           "d1/unified": {"classify": {key.format("test", 1): {"accuracy": 0.8, "macro_f1": 0.5},
                                       key.format("all", 2): {"accuracy": 0.3, "macro_f1": 0.2},
                                       key.format("test", 2): {"accuracy": 0.9}},
                          "segment": {key.format("test", 1): {"mean_dice_fg": 0.9},
                                      key.format("all", 2): {"mean_dice_fg": 0.6}}},
           "d2/classifier": {"classify": {key.format("test", 2): {"accuracy": 0.5},
                                          key.format("all", 1): {"accuracy": 0.45}}}}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(res))
    assert cross_source_table.main(["--dataset", "z", f"before={path}"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2] == ("| before | Dataset 1 | unified | classify | accuracy | 0.800 (60) | "
                      "0.300 (100) | +0.500 |")
    assert "| before | Dataset 1 | unified | segment | mean foreground Dice | 0.900 (60) | "\
        "0.600 (100) | +0.300 |" in out
    assert out[-1] == ("| before | Dataset 2 | classifier | classify | accuracy | 0.500 (20) | "
                       "0.450 (300) | +0.050 |")
    assert len(out) == 2 + 3 + 1  # header, separator; 3 unified rows, 1 classifier row
