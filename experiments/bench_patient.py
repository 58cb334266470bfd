"""The patient-level benchmark on a synthetic cohort: generate (when missing), embed, score.

    python experiments/bench_patient.py --model runs/demo/model --cohort runs/cohort
    python experiments/bench_patient.py --model runs/demo/model --cohort runs/cohort \\
        --patients 300 --cells 100:200 --epochs 60

Writes the cohort with ``unihema data cohort`` settings (``--patients``, ``--cells``,
``--seed``) when ``<cohort>/cohort.jsonl`` is missing, then runs the protocol
(:func:`unihema.patient.cohort.run_protocol`: 5 patient-level folds, kNN / logistic regression
/ head, retrieval) and writes ``<out>/patient_eval.md`` and ``.json`` (default ``out``:
``<cohort>/eval``) plus ``<out>/table.md``: the table with the command that made it, the
machine's load, the seconds each stage took and the goals. Prints ``table.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a save_pretrained model folder")
    p.add_argument("--cohort", required=True, help="cohort folder (generated when missing)")
    p.add_argument("--patients", type=int, default=300)
    p.add_argument("--cells", default="100:200", help="cells per patient LO:HI")
    p.add_argument("--seed", type=int, default=0, help="cohort, folds and encoder seed")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=None, help="encoder epochs (default: the "
                   "EncoderConfig default)")
    p.add_argument("--out", default=None, help="default <cohort>/eval")
    args = p.parse_args(argv)

    from unihema.api import UniHemaPipeline
    from unihema.patient.cohort import run_protocol
    from unihema.patient.encoder import EncoderConfig
    from unihema.patient.protocol import markdown
    from unihema.utils import atomic_write_text

    cohort = Path(args.cohort)
    gen_seconds = None
    if not (cohort / "cohort.jsonl").is_file():
        from unihema.synth.cohort import generate_cohort

        lo, hi = (int(v) for v in args.cells.split(":"))
        t0 = time.perf_counter()
        generate_cohort(cohort, patients=args.patients, cells_per_patient=(lo, hi),
                        seed=args.seed, progress=False)
        gen_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    pipe = UniHemaPipeline.from_pretrained(args.model)
    load_seconds = time.perf_counter() - t0
    cfg = EncoderConfig(seed=args.seed)
    if args.epochs:
        cfg.epochs = args.epochs
    out = Path(args.out) if args.out else cohort / "eval"
    result = run_protocol(pipe.model, pipe.processor, cohort, out, k=args.folds,
                          seed=args.seed, config=cfg, progress=False)
    enc_seconds = sum(f.get("train_seconds", 0.0) for f in result["folds"]
                      .get("attention encoder", []))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cmd = "python experiments/bench_patient.py " + " ".join(argv or sys.argv[1:])
    text = (f"Command: `{cmd}`\n\n" + markdown(result)
            + f"\nWall time {result['wall_seconds']:.0f} s for the protocol: cell embeddings "
            f"{result['embed_seconds']:.0f} s ({result['cells']} cells; 0 when read from the "
            f"cache), encoder training {enc_seconds:.0f} s over {args.folds} folds "
            f"({cfg.epochs} epochs each), the probes the rest; model load "
            f"{load_seconds:.0f} s"
            + (f"; cohort generation {gen_seconds:.0f} s" if gen_seconds else "")
            + f". {platform.machine()}, {os.cpu_count()} cores, load average {load:.1f} at "
            f"the end, torch threads {__import__('torch').get_num_threads()}.\n")
    atomic_write_text(out / "table.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
