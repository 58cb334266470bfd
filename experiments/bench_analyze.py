"""Time ``unihema analyze`` on a synthetic full-size field, end to end, stage by stage.

    python experiments/bench_analyze.py --model runs/demo/model            # a trained model
    python experiments/bench_analyze.py                # a random model of the demo's size
    python experiments/bench_analyze.py --truth-boxes --runs 3 --threads 2

Renders a 1920x1440 field at 0.12 um/px (``--width``, ``--height``, ``--um-per-px``), writes
it as a PNG, then analyses it ``--runs`` times after one unrecorded warm-up: decode to
report.html, i.e. :func:`unihema.analysis.run.analyze` from the file plus
:func:`unihema.analysis.outputs.write_analysis`. Prints one JSON object: per-stage seconds
(median over runs), ``total`` and ``write`` seconds, ``cpu_s`` (this process's CPU seconds
for analyse + write: on a shared machine less noisy than the wall clock), cells found and
cells per second.
``--truth-boxes`` injects the field's truth boxes instead of the detector (the detection head
still runs, for its time), so typing and measuring see the real number of cells even with an
untrained model; ``--given-scale`` passes ``--um-per-px`` (else the scale is estimated);
``--no-prompt-cache`` encodes the prompts of every batch, as the model did before it kept
them (``UniHema.encode_prompts``), for a before/after comparison in one checkout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _pipeline(model_dir, image_size):
    import torch

    from unihema.api import UniHemaPipeline
    from unihema.config import load_config
    from unihema.modeling.model import UniHema

    if model_dir:
        return UniHemaPipeline.from_pretrained(model_dir)
    torch.manual_seed(0)
    cfg = load_config(str(REPO / "unihema" / "presets" / "demo.yaml"))
    return UniHemaPipeline(UniHema.from_config(cfg), image_size=image_size)


def _uncached(model):
    """``model.encode_prompts`` as it was before the cache: every batch tokenized and
    encoded."""
    def encode_prompts(prompts):
        ids, am = model.text.tokenize(list(prompts), model.config.text.max_prompt_tokens)
        return ids, am, model.text.encode(ids, am)
    return encode_prompts


def time_field(pipe, path, runs: int = 3, um_per_px=None, detector=None):
    """Analyse the image at ``path`` ``runs`` times after one unrecorded warm-up, decode to
    report (:func:`unihema.analysis.run.analyze` + :func:`unihema.analysis.outputs.write_analysis`):
    ``{"stages_s": median seconds per stage, "write_s", "end_to_end_s", "cells",
    "cells_per_s", "scale"}`` (``um_per_px`` given, else estimated)."""
    from unihema.analysis.outputs import write_analysis
    from unihema.analysis.run import analyze

    stages, totals, writes, cpus, n, a = {}, [], [], [], 0, None
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs + 1):
            c0 = time.process_time()
            t0 = time.perf_counter()
            a = analyze(pipe, path, progress=False, um_per_px=um_per_px, detections=detector)
            t1 = time.perf_counter()
            write_analysis(a, Path(tmp) / "out")
            t2 = time.perf_counter()
            cpu = time.process_time() - c0
            if run == 0:
                continue  # warm-up
            for k, v in a.timings.items():
                stages.setdefault(k, []).append(v)
            totals.append(t2 - t0)
            writes.append(t2 - t1)
            cpus.append(cpu)
            n = len(a.cells)
    total = statistics.median(totals)
    return {"stages_s": {k: round(statistics.median(v), 3) for k, v in stages.items()},
            "write_s": round(statistics.median(writes), 3), "end_to_end_s": round(total, 3),
            "cpu_s": round(statistics.median(cpus), 3),
            "cells": n, "cells_per_s": round(n / total, 1) if total else None,
            "scale": round(float(a.scale.um_per_px or 0), 4)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="", help="a save_pretrained folder (default: random "
                   "weights of the demo model)")
    p.add_argument("--width", type=int, default=1920)
    p.add_argument("--height", type=int, default=1440)
    p.add_argument("--um-per-px", type=float, default=0.12)
    p.add_argument("--image-size", type=int, default=256, help="tile side of a random model")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--truth-boxes", action="store_true")
    p.add_argument("--given-scale", action="store_true")
    p.add_argument("--no-prompt-cache", action="store_true",
                   help="encode the prompts of every batch (the model before its cache)")
    args = p.parse_args(argv)

    import torch
    from PIL import Image

    from unihema.synth.layout import SmearSpec
    from unihema.synth.smear import make_field

    if args.threads:
        torch.set_num_threads(args.threads)
    from tests.analysis.conftest import truth_detector

    field = make_field(args.width, args.height, args.um_per_px, seed=0,
                       spec=SmearSpec(white_per_100_red=3.0, parasitaemia=0.02))
    pipe = _pipeline(args.model, args.image_size)
    if args.no_prompt_cache:
        pipe.model.encode_prompts = _uncached(pipe.model)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "field.png"
        Image.fromarray(field.image).save(path)
        out = time_field(pipe, path, args.runs,
                         args.um_per_px if args.given_scale else None,
                         truth_detector(field) if args.truth_boxes else None)
    print(json.dumps({
        "field": f"{args.width}x{args.height} at {args.um_per_px} um/px",
        "model": args.model or "random demo-size", "threads": torch.get_num_threads(),
        "truth_boxes": args.truth_boxes, "given_scale": args.given_scale,
        "prompt_cache": not args.no_prompt_cache, **out,
        "truth_cells": len(field.cells), "runs": args.runs}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
