"""experiments/bench_flags.py: smears with an exact number of must-not-miss cells, and the
table of flagged smears per count and policy."""

from __future__ import annotations

import argparse
import importlib.util
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("bench_flags",
                                                  REPO / "experiments" / "bench_flags.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_planned_smear_holds_exactly_k_must_not_miss_cells():
    from unihema.synth.layout import plan_smear

    tool = _tool()
    for k in (0, 1, 5):
        spec = tool.smear_spec(k, 20, 512, 0.406, offset=1)
        layout = plan_smear(512 * 0.406, 512 * 0.406, 3, spec)
        types = Counter(c.type for c in layout.cells)
        assert sum(types[t] for t in tool.MUST_NOT_MISS) == k
        assert sum(v for t, v in types.items() if t in spec.white_mix) == 20 + k
    spec = tool.smear_spec(3, 20, 512, 0.406, offset=1)
    assert [spec.white_mix.get(t) for t in tool.MUST_NOT_MISS] == [1, 1, 1]


def test_the_table_counts_flagged_smears_per_count_and_policy():
    tool = _tool()
    policies = list(tool.policies())
    recs = [{"k": 0, "k_in_field": 0, "must_not_miss_found": 1, "whites_found": 18,
             "whites_in_field": 20, "seconds": 1.0,
             "flagged": {policies[0]: ["schistocytes"], policies[1]: [], policies[2]: []}},
            {"k": 0, "k_in_field": 0, "must_not_miss_found": 0, "whites_found": 18,
             "whites_in_field": 20, "seconds": 1.0, "flagged": {p: [] for p in policies}},
            {"k": 2, "k_in_field": 2, "must_not_miss_found": 2, "whites_found": 20,
             "whites_in_field": 22, "seconds": 1.0,
             "flagged": {p: ["blasts"] for p in policies}}]
    text = tool.table(recs, argparse.Namespace(size=512, whites=20, threads=1))
    rows = [ln for ln in text.splitlines() if ln.startswith("| 0 ") or ln.startswith("| 2 ")]
    assert rows[0].split(" | ")[4:] == ["1/2 = 50 % (9-91)", "0/2 = 0 % (0-66)",
                                        "0/2 = 0 % (0-66)", "0/2 = 0 % (0-66) |"]
    assert rows[1].count("1/1 = 100 %") == 4
    assert "{'schistocytes': 1}" in text and "3 smears" in text
