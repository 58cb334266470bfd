"""Speed parts of the whole-smear benchmark (``experiments/bench_smear.py --only
speed,scan10k,gpu``): a full-size field end to end, a large scan's time and peak memory in a
child process, and fields per second of the base model on a GPU."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict

from experiments.smear_common import (BASE_MODEL, FIELD, REPO, SPEC, UM_PER_PX, by_field,
                                      load_pipeline, truth_detector)


def bench_speed(pipe, runs: int = 3, truth_boxes: bool = False) -> Dict[str, Any]:
    """A 1920x1440 field end to end, per stage (``bench_analyze.time_field``)."""
    import torch
    from PIL import Image

    from experiments.bench_analyze import time_field
    from unihema.synth.layout import SmearSpec
    from unihema.synth.smear import make_field

    field = make_field(*FIELD, UM_PER_PX, seed=0, spec=SmearSpec(**SPEC))
    out = {"threads": torch.get_num_threads(), "truth_cells": len(field.cells)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "field.png"
        Image.fromarray(field.image).save(path)
        for given in (True, False):
            out["scale_given" if given else "scale_estimated"] = time_field(
                pipe, path, runs, UM_PER_PX if given else None,
                truth_detector(field.cells) if truth_boxes else None)
    return out


def bench_scan10k(model_dir: str, side: int = 10000, workdir: str = "",
                  threads: int = 0) -> Dict[str, Any]:
    """Write a ``side`` px square scan, analyse it with ``unihema analyze`` in a child process:
    its wall time and peak resident memory (``getrusage`` of the children)."""
    from unihema.synth.scan import SCAN, write_scan

    work = Path(workdir or tempfile.mkdtemp(prefix="scan10k-"))
    t0 = time.perf_counter()
    if not (work / "scan" / SCAN).is_file():
        write_scan(work / "scan", side, um_per_px=UM_PER_PX, seed=11, spec=None,
                   seam=None, seam_cells=0, instances=False)
    written = time.perf_counter() - t0
    cmd = [sys.executable, "-m", "unihema", "analyze", str(work / "scan" / SCAN), "--model",
           model_dir, "--out", str(work / "out"), "--um-per-px", str(UM_PER_PX), "--json"]
    env = None
    if threads:
        import os

        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode:
        raise RuntimeError(f"unihema analyze failed ({done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads((work / "out" / "summary.json").read_text())
    return {"side": side, "um_per_px": UM_PER_PX, "write_s": round(written, 1),
            "analyse_wall_s": round(wall, 1), "peak_rss_gb": round(peak_kb / 2 ** 20, 3),
            "cells": summary.get("n_cells"), "lineages": summary.get("lineages"),
            "command": " ".join(cmd[1:])}


# ----------------------------------------------------------------------------- gpu
def bench_gpu(device: str = "cuda", dry_run: bool = False, n_fields: int = 8,
              batch_size: int = 16) -> Dict[str, Any]:
    """Fields per second of the base model (random weights, truth boxes) on ``device``;
    ``dry_run``: the tiny model, two small fields, on the CPU."""
    import torch

    from unihema.analysis.run import analyze
    from unihema.synth.layout import SmearSpec
    from unihema.synth.smear import make_field

    if dry_run:
        device, size, n_fields, batch_size = "cpu", (480, 360), 2, 4
        pipe = load_pipeline(preset="tiny_model", image_size=128, overrides=[
            "model.reading.detect=[red blood cell, white blood cell, platelet]"])
    else:
        size = FIELD
        pipe = load_pipeline(overrides=BASE_MODEL, device=device)
    fields = [make_field(*size, UM_PER_PX, seed=k, spec=SmearSpec(**SPEC)) for k in range(2)]
    det = by_field({f"field-{k + 1}": truth_detector(f.cells) for k, f in enumerate(fields)})

    def once():
        return analyze(pipe, [f.image for f in fields], um_per_px=UM_PER_PX, progress=False,
                       detections=det, batch_size=batch_size)

    once()  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    reps = max(1, n_fields // len(fields))
    for _ in range(reps):
        a = once()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"device": device if not device.startswith("cuda") else torch.cuda.get_device_name(),
            "model": "tiny (dry run)" if dry_run else "base (random weights)",
            "parameters": pipe.model.num_parameters()["total"], "field": list(size),
            "fields": reps * len(fields), "seconds": round(dt, 2),
            "fields_per_s": round(reps * len(fields) / dt, 3), "cells_per_field": round(
                len(a.cells) / len(fields), 1), "batch_size": batch_size}
