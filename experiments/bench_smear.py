"""The whole-smear benchmark: ``unihema analyze`` against exact truth, at scale, on real fields.

    python experiments/bench_smear.py --model runs/demo/model --only accuracy,scale --out r.json
    python experiments/bench_smear.py --model runs/real/bccd/model --only real \\
        --specialist runs/real/spec_cmp/detector
    python experiments/bench_smear.py --model runs/demo/model --only speed,scan10k
    python experiments/bench_smear.py --only gpu --device cuda      # the base model, random
    python experiments/bench_smear.py --only gpu --dry-run           # the same on a CPU, tiny

Sub-benchmarks (``--only``, comma-separated; each writes its part of ``--out``, a JSON file,
and prints a markdown table):

* ``accuracy`` -- ``--fields`` synthetic 1920x1440 fields at 0.12 um/px (white cells and
  ring forms in :data:`SPEC`) analysed as one smear with ``--um-per-px`` given, and one
  stitched scan (``--scan-size``) whose cells on the analysis grid's seams are matched to the
  cells found: count error per lineage (%), white-cell differential (half the L1 distance,
  points), parasitaemia error (points), seam cells found once / missed / doubled
  (:mod:`unihema.analysis.truth`).
* ``scale`` -- one field's layout rendered at 0.5x, 1x and 2x magnification, analysed with and
  without the scale: counts per lineage, their spread (max - min over the mean, %), the scale
  estimate against the truth.
* ``threshold`` -- per lineage, the share of truth cells found and the extras at each score
  threshold, on fields at 0.12 um/px and painted at the model's own scale; picks per lineage
  the threshold of the best F1 (``--min-score chosen`` hands it to the later parts).
* ``typing`` -- white cells typed right when cut from the model's boxes, the truth boxes and
  truth boxes moved by up to 2 px.
* ``real`` -- BCCD test fields (``--bccd``): count error per class and image (MAE, bias and
  relative error) of the model, and of an FCOS specialist (``--specialist``) injected as the
  detector of the same analysis. ``chula`` -- Chula RBC-12 test fields (``--chula``): red-cell
  morphology percentages of the analysis against the labels, over the labelled cells.
* ``speed`` -- a 1920x1440 field end to end (decode to report.html), per stage, cells per
  second (``experiments/bench_analyze.py``). ``scan10k`` -- a ``--scan10k`` px square tiled TIFF
  (``unihema data scan``) analysed by ``unihema analyze`` in a child process: wall time and the
  child's peak resident memory.
* ``gpu`` -- fields per second of the base model (random weights, ``--truth-boxes`` style
  boxes so the typing sees every cell) on ``--device``; ``--dry-run``: the tiny model on one
  small field, to check the script on a CPU.

Without ``--model`` the demo-size model with random weights is used (``--truth-boxes`` then
gives the analysis the truth boxes, so typing, measuring and merging see every cell).
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from experiments.smear_common import (FIELD, LINEAGE_HEADER, MIN_F1, SPEC,  # noqa: E402
                                      THRESHOLDS, UM_PER_PX, analysis_grid, by_field,
                                      lineage_rows, load_pipeline, table, truth_detector)
from experiments.smear_real import (bench_chula, bench_real, report_chula,  # noqa: E402
                                    report_real)
from experiments.smear_speed import bench_gpu, bench_scan10k, bench_speed  # noqa: E402

SUBS = ("accuracy", "scale", "threshold", "typing", "real", "chula", "speed", "scan10k", "gpu")


# ----------------------------------------------------------------------------- accuracy
def bench_accuracy(pipe, n_fields: int = 5, size=FIELD, scan_size=(3000, 2000),
                   truth_boxes: bool = False, seed: int = 0, min_score=None) -> Dict[str, Any]:
    """Fields and a scan against their truth (module docstring)."""
    from unihema.analysis.run import analyze
    from unihema.analysis.truth import MIN_IOU, hits, once_missed_doubled, score_smear, seam_cells
    from unihema.synth.layout import SmearSpec
    from unihema.synth.scan import CELLS, SCAN, write_scan
    from unihema.synth.smear import make_field

    t0 = time.perf_counter()
    fields = [make_field(size[0], size[1], UM_PER_PX, seed=seed + k, spec=SmearSpec(**SPEC))
              for k in range(n_fields)]
    names = [f"field-{k + 1}" for k in range(n_fields)]
    truth = {n: f.cells for n, f in zip(names, fields)}
    det = by_field({n: truth_detector(c) for n, c in truth.items()}) if truth_boxes else None
    t1 = time.perf_counter()
    a = analyze(pipe, [f.image for f in fields], um_per_px=UM_PER_PX, progress=False,
                detections=det, min_score=min_score)
    fields_out = {"n": n_fields, "size": list(size), "um_per_px": UM_PER_PX, "spec": SPEC,
                  "analyse_s": round(time.perf_counter() - t1, 1),
                  "render_s": round(t1 - t0, 1), **score_smear(a, truth)}
    out: Dict[str, Any] = {"min_score": min_score, "fields": fields_out}
    w, h = scan_size
    grid = analysis_grid(pipe, w, h, UM_PER_PX)
    step = grid.xs[1] - grid.xs[0] if len(grid.xs) > 1 else grid.tile
    with tempfile.TemporaryDirectory() as tmp:
        meta = write_scan(tmp, (h, w), um_per_px=UM_PER_PX, seed=seed + 100,
                          spec=SmearSpec(**SPEC), seam=int(step), seam_cells=40,
                          instances=False)
        cells = [json.loads(line) for line in (Path(tmp) / CELLS).read_text().splitlines()]
        t1 = time.perf_counter()
        det = truth_detector(cells) if truth_boxes else None
        s = analyze(pipe, Path(tmp) / SCAN, um_per_px=UM_PER_PX, progress=False,
                    detections=det, min_score=min_score)
        scan_s = time.perf_counter() - t1
    counted = [c for c in cells if c.get("inside", 1.0) >= 0.5]
    tb = np.array([c["box"] for c in counted], float).reshape(-1, 4)
    on = seam_cells(tb, grid)
    n = hits(np.array([c.box for c in s.cells], float).reshape(-1, 4), tb, MIN_IOU,
             [c.lineage for c in s.cells], [c["lineage"] for c in counted])
    seams = {lin: once_missed_doubled(n[on & np.array([c["lineage"] == lin for c in counted])])
             for lin in sorted({c["lineage"] for c in counted})}
    seams["all"] = once_missed_doubled(n[on])
    seams["all, off the seams"] = once_missed_doubled(n[~on])  # the detector's own misses
    out["scan"] = {"size": [w, h], "um_per_px": UM_PER_PX, "tiles": len(grid),
                   "tile_px": grid.tile, "overlap_px": grid.overlap,
                   "seam_placed_cells": meta["seam_cells"], "analyse_s": round(scan_s, 1),
                   **score_smear(s, {SCAN: cells}), "seam_cells": seams}
    return out


def report_accuracy(r: Dict[str, Any]) -> str:
    f, s = r["fields"], r["scan"]
    rows = lineage_rows(f, f"{f['n']} fields") + lineage_rows(s, "scan")
    smear = [[f"{f['n']} fields", f["differential"]["l1_half"], f["differential"]["white_cells"],
              f["parasitaemia"]["truth"], f["parasitaemia"]["found"]],
             ["scan", s["differential"]["l1_half"], s["differential"]["white_cells"],
              s["parasitaemia"]["truth"], s["parasitaemia"]["found"]]]
    seam = [[k, v["cells"], v["found_once"], v["missed"], v["doubled"]]
            for k, v in s["seam_cells"].items()]
    return "\n\n".join([
        table(LINEAGE_HEADER, rows),
        table(("smear", "differential L1/2 (pts)", "white cells typed", "parasitaemia truth %",
               "found %"), smear),
        table(("scan seam cells", "cells", "found once", "missed", "doubled"), seam)])


# ----------------------------------------------------------------------------- scale
def bench_scale(pipe, size=FIELD, factors=(0.5, 1.0, 2.0), truth_boxes: bool = False,
                seed: int = 7, min_score=None) -> Dict[str, Any]:
    """One layout at several magnifications, with and without the scale given."""
    from unihema.analysis.run import analyze
    from unihema.synth.layout import LINEAGES, SmearSpec, plan_smear
    from unihema.synth.smear import render_magnifications

    layout = plan_smear(size[0] * UM_PER_PX, size[1] * UM_PER_PX, seed, SmearSpec(**SPEC))
    rendered = render_magnifications(layout, UM_PER_PX, factors)
    runs = []
    for given in (True, False):
        for f, ff in rendered.items():
            det = truth_detector(ff.cells) if truth_boxes else None
            t0 = time.perf_counter()
            a = analyze(pipe, ff.image, um_per_px=ff.um_per_px if given else None,
                        progress=False, detections=det, min_score=min_score)
            truth = ff.summary()["lineages"]
            runs.append({"magnification": f, "um_per_px": round(ff.um_per_px, 4),
                         "size": [ff.image.shape[1], ff.image.shape[0]], "scale_given": given,
                         "scale_used": a.scale.to_dict(), "seconds": round(time.perf_counter()
                                                                           - t0, 1),
                         "counts": {k: int(a.summary.lineages.get(k, 0)) for k in LINEAGES},
                         "truth": {k: int(truth[k]) for k in LINEAGES}})
    spread = {}
    for lin in LINEAGES:
        for label, sel in (("given", [r for r in runs if r["scale_given"]]),
                           ("estimated", [r for r in runs if not r["scale_given"]]),
                           ("all", runs)):
            v = [r["counts"][lin] for r in sel]
            mean = statistics.mean(v)
            spread.setdefault(lin, {})[label] = round(100 * (max(v) - min(v)) / mean, 2) \
                if mean else None
    return {"min_score": min_score, "runs": runs, "spread_pct": spread}


def report_scale(r: Dict[str, Any]) -> str:
    from unihema.synth.layout import LINEAGES

    rows = []
    for x in r["runs"]:
        sc = x["scale_used"]
        est = "given" if x["scale_given"] else (
            f"{sc.get('um_per_px') or 0:.4f} ({sc.get('low') or 0:.4f}-{sc.get('high') or 0:.4f})")
        rows.append([f"{x['magnification']}x", x["um_per_px"], est]
                    + [f"{x['counts'][k]} / {x['truth'][k]}" for k in LINEAGES])
    spread = [[lin, v["given"], v["estimated"], v["all"]] for lin, v in r["spread_pct"].items()]
    return "\n\n".join([
        table(["magnification", "truth um/px", "scale used (95 % interval)"]
              + [f"{k} found / truth" for k in LINEAGES], rows),
        table(("lineage", "spread % (scale given)", "spread % (estimated)", "spread % (all 6)"),
              spread)])


# ----------------------------------------------------------------------------- threshold
def bench_threshold(pipe, n_fields: int = 2, size=FIELD, scales=(UM_PER_PX, None),
                    thresholds=THRESHOLDS, seed: int = 20) -> Dict[str, Any]:
    """What the detector finds per lineage at each score threshold, on fields at
    ``UM_PER_PX`` (rescaled to the model's scale) and, for ``None`` in ``scales``, the same
    area rendered at the model's own scale (no rescaling): per threshold and lineage the truth
    cells found (recall, %) and the found cells matching no truth cell (extra)."""
    from unihema.analysis.run import analyze, model_um_per_px
    from unihema.analysis.truth import MIN_IOU, hits
    from unihema.synth.layout import LINEAGES, SmearSpec, plan_smear
    from unihema.synth.smear import render_layout

    model_um = model_um_per_px(pipe)
    out: Dict[str, Any] = {"model_um_per_px": model_um, "rows": []}
    layouts = [plan_smear(size[0] * UM_PER_PX, size[1] * UM_PER_PX, seed + k, SmearSpec(**SPEC))
               for k in range(n_fields)]
    for um in scales:
        um = float(um or model_um)
        ffs = [render_layout(lay, um) for lay in layouts]
        a = analyze(pipe, [f.image for f in ffs], um_per_px=um, progress=False,
                    min_score=min(thresholds))
        for thr in thresholds:
            found = {k: 0 for k in LINEAGES}
            truth = {k: 0 for k in LINEAGES}
            extra = {k: 0 for k in LINEAGES}
            for k, ff in enumerate(ffs):
                t = [c for c in ff.cells if c.get("inside", 1.0) >= 0.5]
                mine = [c for c in a.cells if c.field == f"field-{k + 1}" and c.score >= thr]
                n = hits(np.array([c.box for c in mine], float).reshape(-1, 4),
                         np.array([c["box"] for c in t], float).reshape(-1, 4), MIN_IOU,
                         [c.lineage for c in mine], [c["lineage"] for c in t])
                for c, h in zip(t, n):
                    truth[c["lineage"]] += 1
                    found[c["lineage"]] += int(h > 0)
                for lin in LINEAGES:  # duplicates and cells that are not there
                    extra[lin] += sum(c.lineage == lin for c in mine) - sum(
                        int(h > 0) for c, h in zip(t, n) if c["lineage"] == lin)
            out["rows"].append({"um_per_px": round(um, 4), "threshold": thr, "truth": truth,
                                "found": found,
                                "recall_pct": {k: round(100 * found[k] / truth[k], 1)
                                               if truth[k] else None for k in LINEAGES},
                                "extra": extra,
                                "f1": {k: round(2 * found[k] / (truth[k] + found[k] + extra[k]),
                                                3) if truth[k] else None for k in LINEAGES}})
    # per lineage the threshold of the best F1 (found truth cells against misses and extras)
    # on the fields at UM_PER_PX: ``--min-score`` for the other parts; a lineage the detector
    # does not find at any threshold (best F1 under MIN_F1) keeps the model's threshold
    first = [x for x in out["rows"] if x["um_per_px"] == round(float(scales[0] or model_um), 4)]
    best = {k: max(first, key=lambda x, k=k: (x["f1"][k] or 0, x["threshold"]))
            for k in LINEAGES}
    out["chosen"] = {k: x["threshold"] for k, x in best.items() if (x["f1"][k] or 0) >= MIN_F1}
    out["min_score"] = ",".join(f"{k}={v}" for k, v in out["chosen"].items())
    return out


def report_threshold(r: Dict[str, Any]) -> str:
    from unihema.synth.layout import LINEAGES

    rows = [[x["um_per_px"], x["threshold"]]
            + [f"{x['recall_pct'][k]} / {x['extra'][k]}" for k in LINEAGES]
            for x in r["rows"]]
    return table(["field um/px", "score threshold"]
                 + [f"{k}: recall % / extra" for k in LINEAGES], rows) + (
        f"\n\nbest F1 per lineage: --min-score '{r['min_score']}'")


# ----------------------------------------------------------------------------- typing
def bench_typing(pipe, n_fields: int = 3, size=FIELD, seed: int = 30, shift: int = 2,
                 min_score=None) -> Dict[str, Any]:
    """White cells typed right, over the found white cells matched to a truth white cell, on
    ``n_fields`` fields painted at the model's scale: with the model's own boxes, with the
    truth boxes, and with the truth boxes moved by up to ``shift`` px at random (how much the
    typing depends on where a crop is cut)."""
    from unihema.analysis.run import analyze, model_um_per_px
    from unihema.analysis.truth import assign
    from unihema.synth.layout import SmearSpec, plan_smear
    from unihema.synth.smear import render_layout

    um = model_um_per_px(pipe)
    ffs = [render_layout(plan_smear(size[0] * UM_PER_PX, size[1] * UM_PER_PX, seed + k,
                                    SmearSpec(white_per_100_red=SPEC["white_per_100_red"])), um)
           for k in range(n_fields)]
    rng = np.random.default_rng(0)
    out: Dict[str, Any] = {"fields": n_fields, "um_per_px": um, "shift_px": shift}
    for name in ("model boxes", "truth boxes", f"truth boxes moved <= {shift} px"):
        right = n = 0
        for ff in ffs:
            cells = [dict(c) for c in ff.cells]
            if name.startswith("truth boxes moved"):
                for c in cells:
                    dx, dy = rng.integers(-shift, shift + 1, 2)
                    c["box"] = [c["box"][0] + dx, c["box"][1] + dy, c["box"][2] + dx,
                                c["box"][3] + dy]
            det = None if name == "model boxes" else truth_detector(cells)
            a = analyze(pipe, ff.image, um_per_px=um, progress=False, detections=det,
                        min_score=min_score)
            t = [c for c in ff.cells if c["lineage"] == "white blood cell"
                 and c.get("inside", 1.0) >= 0.5]
            f = [c for c in a.cells if c.lineage == "white blood cell"]
            got = assign(np.array([c.box for c in f], float).reshape(-1, 4),
                         np.array([c["box"] for c in t], float).reshape(-1, 4))
            for c, i in zip(f, got):
                if i >= 0:
                    n += 1
                    right += c.type == t[i]["type"]
        out[name] = {"typed_right": right, "matched": n}
    return out


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="", help="a save_pretrained folder (default: random "
                   "weights of the demo model)")
    p.add_argument("--only", default="accuracy,scale,speed", help=f"any of {','.join(SUBS)}")
    p.add_argument("--out", default="", help="JSON file of the results (merged into it)")
    p.add_argument("--truth-boxes", action="store_true", help="inject the truth boxes")
    p.add_argument("--fields", type=int, default=5)
    p.add_argument("--field-size", default="1920x1440")
    p.add_argument("--scan-size", default="3000x2000")
    p.add_argument("--image-size", type=int, default=256, help="tile side of a random model")
    p.add_argument("--bccd", default="../shared/datasets/BCCD")
    p.add_argument("--chula", default="../shared/datasets/Chula-RBC-12")
    p.add_argument("--specialist", default="", help="a specialist detector folder (real)")
    p.add_argument("--limit", type=int, default=None, help="real/chula: first N test fields")
    p.add_argument("--runs", type=int, default=3, help="speed: timed runs")
    p.add_argument("--scan10k", type=int, default=10000, help="scan10k: side in pixels")
    p.add_argument("--workdir", default="", help="scan10k: where the scan is written (kept)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--min-score", default="", help="accuracy, scale: detection threshold, "
                   "one or per class ('platelet=0.3,white blood cell=0.2'; default the "
                   "model's); 'chosen': what the threshold part picked (run it first)")
    p.add_argument("--device", default="cuda", help="gpu: the device")
    p.add_argument("--dry-run", action="store_true", help="gpu: tiny model on the CPU")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SUBS]
    if bad:
        p.error(f"--only: unknown {bad}; choose from {', '.join(SUBS)}")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    size = tuple(int(v) for v in args.field_size.split("x"))
    scan = tuple(int(v) for v in args.scan_size.split("x"))
    results: Dict[str, Any] = {}
    if args.out and Path(args.out).is_file():
        results = json.loads(Path(args.out).read_text())
    pipe = None
    if set(only) - {"gpu", "scan10k"}:
        pipe = load_pipeline(args.model, args.image_size)
    min_score = None
    if args.min_score:
        from unihema.analysis.reader import parse_min_score

        min_score = None if args.min_score == "chosen" else parse_min_score(args.min_score)
    meta = {"model": args.model or "random demo-size", "truth_boxes": args.truth_boxes,
            "threads": torch.get_num_threads()}
    for sub in only:
        t0 = time.perf_counter()
        if sub == "accuracy":
            r = bench_accuracy(pipe, args.fields, size, scan, args.truth_boxes,
                               min_score=min_score)
            text = report_accuracy(r)
        elif sub == "scale":
            r = bench_scale(pipe, size, truth_boxes=args.truth_boxes, min_score=min_score)
            text = report_scale(r)
        elif sub == "threshold":
            r = bench_threshold(pipe, 2, size)
            text = report_threshold(r)
            if args.min_score == "chosen":
                min_score = r["chosen"]
        elif sub == "typing":
            r = bench_typing(pipe, 3, size, min_score=min_score)
            text = table(("white cells cut from", "typed right", "of matched"),
                         [[k, v["typed_right"], v["matched"]] for k, v in r.items()
                          if isinstance(v, dict)])
        elif sub == "real":
            r = bench_real(pipe, args.bccd, args.specialist, args.limit)
            text = report_real(r)
        elif sub == "chula":
            r = bench_chula(pipe, args.chula, args.limit)
            text = report_chula(r)
        elif sub == "speed":
            r = bench_speed(pipe, args.runs, args.truth_boxes)
            text = table(("scale", "stages (s)", "write s", "end to end s", "cells",
                          "cells/s"), [[k, ", ".join(f"{a} {b:.2f}" for a, b in
                                                     v["stages_s"].items()),
                                        v["write_s"], v["end_to_end_s"], v["cells"],
                                        v["cells_per_s"]]
                                       for k, v in r.items() if isinstance(v, dict)])
        elif sub == "scan10k":
            model_dir = args.model
            if not model_dir:
                model_dir = tempfile.mkdtemp(prefix="bench-model-")
                load_pipeline(image_size=args.image_size).model.save_pretrained(
                    model_dir, extra={"image_size": args.image_size})
            r = bench_scan10k(model_dir, args.scan10k, args.workdir, args.threads)
            text = table(("side", "cells", "write s", "analyse wall s", "peak RSS GB"),
                         [[r["side"], r["cells"], r["write_s"], r["analyse_wall_s"],
                           r["peak_rss_gb"]]])
        else:
            r = bench_gpu(args.device, args.dry_run)
            text = table(("device", "model", "fields", "fields/s", "cells/field"),
                         [[r["device"], r["model"], r["fields"], r["fields_per_s"],
                           r["cells_per_field"]]])
        r["wall_s"] = round(time.perf_counter() - t0, 1)
        results[sub] = {**meta, **r}
        print(f"## {sub} ({r['wall_s']} s)\n\n{text}\n", flush=True)
        if args.out:
            from unihema.utils import atomic_write_text

            atomic_write_text(args.out, json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
