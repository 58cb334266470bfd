"""Time the synthetic generator:
``python experiments/bench_synth.py [--fields 1000] [--workers 0]``.

Generates N fields (with crops and PNG writing, exactly as ``unihema data generate`` does) into a
temporary folder and prints fields per second and the time per 1,000 fields. ``--render-only``
times ``render_field`` alone in this process (no files, no workers).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


from unihema.config.schema import SynthConfig  # noqa: E402
from unihema.synth import generate_dataset, render_field  # noqa: E402
from unihema.synth.writer import field_seed  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fields", type=int, default=1000, help="number of fields to generate")
    ap.add_argument("--workers", type=int, default=0, help="processes (0 = one per core)")
    ap.add_argument("--size", type=int, default=256, help="field side in pixels")
    ap.add_argument("--render-only", action="store_true", help="time render_field alone")
    args = ap.parse_args(argv)
    cfg = SynthConfig(size=args.size, workers=args.workers, seed=0)
    t0 = time.perf_counter()
    if args.render_only:
        for i in range(args.fields):
            render_field(field_seed(cfg.seed, "train", i), cfg)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            generate_dataset(tmp, cfg, splits={"train": args.fields}, progress=False)
    dt = time.perf_counter() - t0
    workers = args.workers or os.cpu_count()
    mode = "render only, 1 process" if args.render_only else f"{workers} worker(s), with files"
    print(f"{args.fields} fields of {args.size}x{args.size} ({mode}): {dt:.2f} s, "
          f"{args.fields / dt:.1f} fields/s, 1,000 fields in {1000 * dt / args.fields:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
