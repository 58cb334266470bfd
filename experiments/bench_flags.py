"""Smear-level review flags on synthetic smears: sensitivity and specificity against the number
of must-not-miss cells a smear holds.

    python experiments/bench_flags.py --model runs/demo40/model --smears 12 \\
        --out runs/bench_flags

Each smear is one synthetic camera field (``--size`` pixels square at the model's scale,
:func:`unihema.synth.smear.make_field`) holding ``--whites`` white cells of the normal
differential plus ``k`` must-not-miss white cells (``k`` in ``--counts``, default 0 1 2 5
10), taken in turn from myeloblast, promyelocyte and atypical lymphocyte. A smear with
``k = 0`` should not be flagged (specificity); one with ``k > 0`` should (sensitivity).
``k`` in the table is the number planned; the field's truth is kept per smear (a cell the
layout could not place, or cut by the field's edge, is not in it).

Every smear is read once by ``analyze`` (the model's detector and classifier, the scale given),
then each policy of :data:`POLICIES` is applied to the same cells
(:func:`unihema.analysis.flags.review_flags`): the default rules, and two stricter variants,
so their trade-off is measured on the same readings. Writes ``smears.jsonl`` (one record per
smear) and ``table.md`` (the table for docs/benchmarks.md, Wilson 95 % intervals) into
``--out`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: the must-not-miss white types the demo model was trained on, drawn in turn
MUST_NOT_MISS = ("myeloblast", "promyelocyte", "atypical lymphocyte")
#: the rules of those types (the other rules fire on red cells, parasites, unknown cells)
WHITE_RULES = ("blasts", "promyelocytes", "atypical_lymphocytes")
COUNTS = (0, 1, 2, 5, 10)


def policies():
    """name -> FlagPolicy: the default, and the white-cell rules made stricter."""
    from unihema.analysis.flags import DEFAULT_POLICY, FlagPolicy, FlagRule

    white = WHITE_RULES

    def variant(**kw):
        return FlagPolicy(tuple(
            FlagRule(**{**{k: getattr(r, k) for k in ("kind", "types", "unknown", "of",
                                                       "min_count", "min_share",
                                                       "min_probability", "label")},
                        **(kw if r.kind in white else {})})
            for r in DEFAULT_POLICY.rules))

    return {"default (1 cell)": DEFAULT_POLICY, "2 cells": variant(min_count=2),
            "1 cell at p >= 0.8": variant(min_probability=0.8)}


def smear_spec(k: int, whites: int, size: int, um_per_px: float, offset: int):
    """A SmearSpec with exactly ``whites`` normal white cells and ``k`` must-not-miss ones
    planned on a ``size`` x ``size`` field (quotas of integer weights are exact)."""
    import numpy as np

    from unihema.synth.layout import NORMAL_DIFFERENTIAL, RED_CELL_UM, SmearSpec, quotas

    spec = SmearSpec()
    area = (size * um_per_px) ** 2
    n_red = int(round(spec.red_coverage * area / (np.pi * (RED_CELL_UM / 2) ** 2)))
    mix: Dict[str, float] = dict(Counter(quotas(NORMAL_DIFFERENTIAL, whites)))
    for i in range(k):
        t = MUST_NOT_MISS[(offset + i) % len(MUST_NOT_MISS)]
        mix[t] = mix.get(t, 0) + 1
    total = whites + k
    # round(n_red * w / 100) == total exactly
    return SmearSpec(white_per_100_red=100.0 * total / n_red, white_mix=mix)


def run(args) -> List[dict]:
    import torch

    from unihema.analysis.flags import review_flags
    from unihema.analysis.run import analyze, model_um_per_px
    from unihema.api import UniHemaPipeline
    from unihema.synth.smear import make_field

    torch.set_num_threads(args.threads)
    pipe = UniHemaPipeline.from_pretrained(args.model)
    um = model_um_per_px(pipe)
    pols = policies()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for k in args.counts:
        for s in range(args.smears):
            seed = 1000 * k + s
            spec = smear_spec(k, args.whites, args.size, um, s)
            field = make_field(args.size, args.size, um_per_px=um, seed=seed, spec=spec)
            truth = Counter(c["type"] for c in field.cells if c.get("inside", 1.0) >= 0.5)
            t0 = time.perf_counter()
            a = analyze(pipe, field.image, um_per_px=um, progress=False)
            seconds = time.perf_counter() - t0
            found = Counter(c.type for c in a.cells)
            rec = {"k": k, "seed": seed, "k_in_field": sum(truth[t] for t in MUST_NOT_MISS),
                   "whites_in_field": sum(v for t, v in truth.items()
                                          if t in spec.white_mix),
                   "whites_found": a.summary.lineages.get("white blood cell", 0),
                   "must_not_miss_found": sum(found[t] for t in MUST_NOT_MISS),
                   "seconds": round(seconds, 2), "flagged": {}}
            for name, policy in pols.items():
                rec["flagged"][name] = [f.kind for f in review_flags(a.cells, policy)]
            records.append(rec)
            print(json.dumps(rec), flush=True)
    (out / "smears.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


def table(records: List[dict], args) -> str:
    from unihema.analysis.summary import wilson

    names = list(records[0]["flagged"]) if records else []
    columns = [(n, False) for n in names] + [(names[0], True)] if names else []
    head = ("| must-not-miss cells planned | smears | in the field (mean) | typed as such "
            "(mean) | " + " | ".join(f"{n}: flagged" + (" by a white-cell rule" if w else "")
                                     for n, w in columns) + " |")
    lines = [head, "|" + "---|" * (4 + len(columns))]
    for k in sorted({r["k"] for r in records}):
        rows = [r for r in records if r["k"] == k]
        n = len(rows)
        cells = []
        for name, white_only in columns:
            flagged = sum(bool([f for f in r["flagged"][name]
                                if not white_only or f in WHITE_RULES]) for r in rows)
            lo, hi = wilson(flagged, n)
            cells.append(f"{flagged}/{n} = {100 * flagged / n:.0f} % "
                         f"({100 * lo:.0f}-{100 * hi:.0f})")
        lines.append(f"| {k} | {n} | {sum(r['k_in_field'] for r in rows) / n:.1f} | "
                     f"{sum(r['must_not_miss_found'] for r in rows) / n:.1f} | "
                     + " | ".join(cells) + " |")
    seconds = sum(r["seconds"] for r in records)
    alarms = Counter(f for r in records if r["k"] == 0 for f in r["flagged"].get(names[0], [])) \
        if names else Counter()
    lines += ["", f"{len(records)} smears, each one {args.size}x{args.size} field at the "
              f"model's scale with {args.whites} normal white cells; analyze took "
              f"{seconds:.0f} s in all ({args.threads} thread(s)). Flagged smears with "
              f"their 95 % Wilson interval: the k = 0 row gives the false alarms "
              f"(specificity = 1 - that share), the others the sensitivity. Rules behind "
              f"the default policy's false alarms: {dict(alarms) or 'none'}. White cells "
              f"found per smear: "
              f"{sum(r['whites_found'] for r in records) / max(len(records), 1):.1f} of "
              f"{sum(r['whites_in_field'] for r in records) / max(len(records), 1):.1f} "
              f"in the fields."]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a trained model folder")
    p.add_argument("--out", default="runs/bench_flags")
    p.add_argument("--smears", type=int, default=12, help="smears per count")
    p.add_argument("--counts", type=int, nargs="+", default=list(COUNTS))
    p.add_argument("--whites", type=int, default=20, help="normal white cells per smear")
    p.add_argument("--size", type=int, default=512, help="field side, pixels")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    records = run(args)
    text = table(records, args)
    (Path(args.out) / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
