"""The cross-source table of docs/benchmarks.md from `unihema eval` results.

Each model was trained on one subset (acquisition) of a dataset; the suite scored every model
on each subset's test split and on every image of each subset (configs/eval/cross_zheng.yaml).
For a model trained on subset A the table shows the in-source score (A's test split), the
cross-source score (every image of the other subset B, none of which it trained on) and the
drop between them::

    python experiments/cross_source_table.py before=runs/cross/eval_before/results.json \\
        after=runs/cross/eval_after/results.json

Model names in results.json are ``<subset folder>/<model>`` (``d1/unified``, ``d2/classifier``:
`unihema eval` names a model by its folder and the parent where names collide); ``--subsets``
maps each subset folder to the value of the suite entries' ``where: {subset: ...}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Sequence

from unihema.tables import markdown_table

#: (task, metric, label)
METRICS = [("classify", "accuracy", "accuracy"), ("classify", "macro_f1", "macro F1"),
           ("segment", "mean_dice_fg", "mean foreground Dice")]


def rows(label: str, results: Dict, dataset: str, subsets: Dict[str, str]) -> List[List[str]]:
    """One row per (model, metric) of one results.json."""
    out = []
    models = [m for m in results["meta"]["models"] if "/" in m]
    items = {(e["task"], e["key"]): e.get("items") for e in results["meta"]["entries"]}
    for name in sorted(models, key=lambda n: (n.split("/")[1] != "unified", n)):
        folder, kind = name.split("/", 1)
        own = subsets[folder]
        other = next(v for k, v in subsets.items() if k != folder)
        for task, metric, text in METRICS:
            key_in = f"{dataset}/test[subset={own}]"
            key_out = f"{dataset}/all[subset={other}]"
            got = results.get(name, {}).get(task, {})
            if key_in not in got or key_out not in got:
                continue  # the model has no such task
            a, b = got[key_in].get(metric), got[key_out].get(metric)
            if a is None or b is None:
                continue
            out.append([label, own, kind, task, text,
                        f"{a:.3f} ({items.get((task, key_in))})",
                        f"{b:.3f} ({items.get((task, key_out))})", f"{a - b:+.3f}"])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="+", metavar="LABEL=RESULTS_JSON",
                    help="a label (before, after) and the results.json of one eval run")
    ap.add_argument("--dataset", default="wbc_seg_zheng")
    ap.add_argument("--subsets", default="d1=Dataset 1,d2=Dataset 2",
                    help="model subset folder = where-value, comma-separated")
    args = ap.parse_args(argv)
    subsets = dict(p.split("=", 1) for p in args.subsets.split(","))
    table = []
    for spec in args.results:
        label, _, path = spec.partition("=")
        if not path:
            ap.error(f"expected LABEL=RESULTS_JSON, got '{spec}'")
        table += rows(label, json.loads(Path(path).read_text()), args.dataset, subsets)
    header = ["run", "trained on", "model", "task", "metric", "in-source test (items)",
              "cross-source (items)", "drop"]
    print(markdown_table([header, *table]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
