"""Real fields for the whole-smear benchmark (``experiments/bench_smear.py --only
real,chula``): BCCD counts per class and image, with the model or an injected specialist
detector, and Chula RBC-12 red-cell morphology percentages over the labelled cells."""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from experiments.smear_common import table


def red_cell_um_per_px(samples) -> float:
    """A set's scale from its labelled red cells: 7.5 um over their median box side."""
    from unihema.synth.layout import RED_CELL_UM

    sides = [math.sqrt(max(1.0, (b[2] - b[0]) * (b[3] - b[1])))
             for s in samples for b, lab in zip(np.asarray(s.boxes).reshape(-1, 4),
                                                s.box_labels or []) if lab == "red blood cell"]
    return RED_CELL_UM / float(np.median(sides))


def specialist_detector(path: str, images: Dict[str, np.ndarray], classes: Sequence[str],
                        factor: float, threshold: float):
    """An FCOS (or other) specialist as the analysis's detector: each window of a field read
    at ``factor`` (the size it was trained at), boxes back in the field's pixels."""
    import torch

    from unihema.analysis.merge import Detections
    from unihema.analysis.tiles import rescale_tile
    from unihema.baselines import load_baseline

    model = load_baseline(path)

    def detect(name, window):
        x0, y0, x1, y1 = window
        im, (fx, fy) = rescale_tile(images[name][y0:y1, x0:x1], factor)
        x = torch.from_numpy(np.array(im)).permute(2, 0, 1).float()[None] / 255.0
        batch = {"images": x, "pixel_mask": torch.ones(1, *x.shape[-2:], dtype=torch.bool),
                 "classes": [list(classes)], "task": "detect"}
        det = model.predict(batch)[0]
        keep = det["scores"].numpy() >= threshold
        boxes = det["boxes"].numpy()[keep].reshape(-1, 4).astype(float)
        boxes[:, [0, 2]] = boxes[:, [0, 2]] / fx + x0
        boxes[:, [1, 3]] = boxes[:, [1, 3]] / fy + y0
        labels = np.array([classes[int(c)] for c in det["classes"].numpy()[keep]], object)
        return Detections(boxes, labels, det["scores"].numpy()[keep])

    return detect


def count_errors(per_image: List[Dict[str, Any]], classes: Sequence[str], threshold: Any
                 ) -> Dict[str, Dict[str, float]]:
    """Per class over images, counting found cells scoring at least ``threshold`` (one for
    all, or class -> threshold): MAE, mean signed error (bias) and sum |error| / sum truth
    (%)."""
    out = {}
    for c in classes:
        t = threshold[c] if isinstance(threshold, dict) else threshold
        err = [sum(1 for v in r["scores"].get(c, []) if v >= t) - r["truth"].get(c, 0)
               for r in per_image]
        tot = sum(r["truth"].get(c, 0) for r in per_image)
        out[c] = {"mae": round(statistics.mean(abs(e) for e in err), 3),
                  "bias": round(statistics.mean(err), 3),
                  "relative_pct": round(100 * sum(abs(e) for e in err) / tot, 1) if tot else None,
                  "truth_mean": round(tot / len(per_image), 2)}
    return out


def _score_lists(pipe, samples, images, classes, um, detector, floor):
    """Per image: the truth count per class and the scores of the cells found per class."""
    from unihema.analysis.run import analyze

    out = []
    for s in samples:
        key = Path(s.image_path).name
        a = analyze(pipe, [images[key]], um_per_px=um, progress=False, min_score=floor,
                    detections=None if detector is None else (
                        lambda n, w, _k=key: detector(_k, w)))
        out.append({"truth": {c: sum(1 for lab in (s.box_labels or []) if lab == c)
                              for c in classes},
                    "scores": {c: [x.score for x in a.cells if x.lineage == c] for c in classes}})
    return out


def bench_real(pipe, root: str, specialist: str = "", limit: Optional[int] = None,
               val_limit: Optional[int] = 30, floor: float = 0.05) -> Dict[str, Any]:
    """BCCD test fields: count error per class and image, the model and the specialist, each
    counting a class at the score threshold that minimises its count MAE on ``val_limit``
    validation fields (from ``floor`` up in steps of 0.05)."""
    from PIL import Image

    from unihema.data.catalog import load_dataset

    test = load_dataset("bccd", root, "test")[:limit]
    val = load_dataset("bccd", root, "val")[:val_limit]
    um = red_cell_um_per_px(load_dataset("bccd", root, "train"))
    side = max(int(test[0].width), int(test[0].height))
    factor = min(1.0, int(pipe.image_size) / side)  # the model saw fields at image_size
    meta = dict(getattr(pipe, "meta", None) or {})
    pipe.meta = {**meta, "um_per_px": um / factor}
    classes = ["red blood cell", "white blood cell", "platelet"]
    images = {Path(s.image_path).name: np.asarray(Image.open(s.image_path).convert("RGB"))
              for s in test + val}
    out: Dict[str, Any] = {"images": len(test), "val_images": len(val),
                           "um_per_px": round(um, 4), "model_factor": factor, "models": {}}
    runs = [("unified", None)]
    if specialist:
        runs.append(("specialist", specialist_detector(specialist, images, classes, factor,
                                                       floor)))
    grid = [round(floor + 0.05 * k, 2) for k in range(int((0.9 - floor) / 0.05) + 1)]
    try:
        for name, det in runs:
            t0 = time.perf_counter()
            v = _score_lists(pipe, val, images, classes, um, det, floor)
            thr = {c: min(grid, key=lambda t, c=c: count_errors(v, [c], t)[c]["mae"])
                   for c in classes}
            per = _score_lists(pipe, test, images, classes, um, det, floor)
            out["models"][name] = {"threshold": thr, "seconds": round(time.perf_counter() - t0,
                                                                      1),
                                   "per_class": count_errors(per, classes, thr),
                                   "default_threshold": count_errors(
                                       per, classes, pipe.score_threshold if det is None
                                       else 0.5)}
    finally:
        pipe.meta = meta
    return out


def report_real(r: Dict[str, Any]) -> str:
    rows = [[m, f"{v['threshold'][c]:.2f}", c, e["truth_mean"], e["mae"], e["bias"],
             e["relative_pct"], v["default_threshold"][c]["mae"]]
            for m, v in r["models"].items() for c, e in v["per_class"].items()]
    return table(("detector", "score threshold (from val)", "class", "truth per image",
                  "MAE per image", "bias", "sum |error| / truth %",
                  "MAE at the default threshold"), rows)


def bench_chula(pipe, root: str, limit: Optional[int] = None) -> Dict[str, Any]:
    """Chula RBC-12 test fields: each labelled cell (a point) is matched to the analysed red
    cell whose box holds it (the nearest centre); red-cell morphology percentages over the
    matched cells, by the labels and by the analysis."""
    from collections import Counter

    from unihema.analysis.run import analyze
    from unihema.data.catalog import load_dataset

    fields = [s for s in load_dataset("chula_rbc12", root, "test")
              if (s.meta or {}).get("kind") == "field"][:limit]
    um = None  # estimated from the red cells of each field
    labels, found, unmatched, n_cells = Counter(), Counter(), 0, 0
    t0 = time.perf_counter()
    for s in fields:
        a = analyze(pipe, s.image_path, um_per_px=um, progress=False)
        red = [c for c in a.cells if c.lineage == "red blood cell"]
        n_cells += len(red)
        centres = np.array([[(c.box[0] + c.box[2]) / 2, (c.box[1] + c.box[3]) / 2]
                            for c in red]).reshape(-1, 2)
        for (x, y), lab in zip((s.meta or {}).get("points", []), s.box_labels or []):
            inside = [i for i, c in enumerate(red)
                      if c.box[0] <= x < c.box[2] and c.box[1] <= y < c.box[3]]
            if not inside:
                unmatched += 1
                continue
            i = min(inside, key=lambda j: float(np.hypot(*(centres[j] - (x, y)))))
            labels[lab] += 1
            found[red[i].type] += 1
    n = sum(labels.values())
    types = sorted(set(labels) | set(found))
    return {"fields": len(fields), "labelled_matched": n, "labelled_unmatched": unmatched,
            "red_cells_found": n_cells, "seconds": round(time.perf_counter() - t0, 1),
            "percent": {t: {"labels": round(100 * labels[t] / n, 2) if n else None,
                            "analysis": round(100 * found[t] / n, 2) if n else None}
                        for t in types}}


def report_chula(r: Dict[str, Any]) -> str:
    return table(("red-cell type", "labels %", "analysis %"),
                 [[t, v["labels"], v["analysis"]] for t, v in r["percent"].items()])
