"""Time ``unihema data check`` with and without the duplicate search (whole processes).

    python experiments/bench_data_check.py bccd --root ../shared/datasets/BCCD --runs 7

Runs ``python -m unihema data check KEY --root DIR --no-progress`` (A) and the same with
``--no-duplicates`` (B) in turn, A B A B ..., after one unrecorded warm-up run of each, and
prints min, median and max wall seconds of each and of the pairwise ratio A/B. Quote the
median; a wide spread says the machine was busy.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(cmd) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("key", help="adapter key")
    ap.add_argument("--root", required=True, help="dataset folder")
    ap.add_argument("--runs", type=int, default=7, help="timed runs of each command")
    args = ap.parse_args(argv)
    with_dups = [sys.executable, "-m", "unihema", "data", "check", args.key, "--root",
                 str(Path(args.root).resolve()), "--no-progress"]
    without = with_dups + ["--no-duplicates"]
    run(with_dups), run(without)
    a, b = [], []
    for _ in range(args.runs):
        a.append(run(with_dups))
        b.append(run(without))
    ratio = [x / y for x, y in zip(a, b)]
    print(f"data check {args.key}, {args.runs} runs each, wall seconds: min / median / max")
    for name, v in (("with duplicates (A)", a), ("--no-duplicates (B)", b), ("A / B", ratio)):
        print(f"  {name:20s} {min(v):7.3f} {statistics.median(v):7.3f} {max(v):7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
