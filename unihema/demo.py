"""``unihema demo``: the end-to-end run on the embedded synthetic smears.

1. data: generate train/val/test fields (reused when the folder holds the same generation),
   check them, draw a preview grid;
2. model: train the tiny unified model on all six tasks in one run (``presets/demo.yaml``),
   fit the classifier's temperature on the validation split, then the per-cell trust state
   (``presets/demo_trust.yaml``: conformal sets, unknown-cell score, referral; docs/trust.md)
   on its white cells, saved beside the model;
3. evaluation on the held-out test split (its own seed), with VQA and MLM also scored with
   the images shuffled across questions (the grounding gap);
4. report: one table of metrics per task with the target bars, ``report.md``, overlay PNGs of
   detection and segmentation, sample questions with the model's answers, and one answer
   through the Python API;
5. a whole smear: ``unihema analyze`` on a synthetic 1920 x 1440 camera field at 0.12 um/px
   (``analysis/``: cells, summary, overlay and the ``report.html`` a person reviews), its
   counts per lineage beside the field's exact truth (``smear/``).

``--quick`` (``presets/demo_quick.yaml``) runs the same path on a small generation and a
60-step training run: its numbers only show that everything runs.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from unihema.config import dump_config, load_config, to_dict
from unihema.synth import WHITE_TYPES
from unihema.tables import markdown_table, plain_table
from unihema.tasks import TASKS, get_task, specs
from unihema.utils import atomic_write_text

logger = logging.getLogger(__name__)

PRESETS = Path(__file__).resolve().parent / "presets"

# The headline numbers and the bars the demo is held to are each task's spec's
# (``spec.headline``, ``spec.shown``, :mod:`unihema.tasks`), as are the evaluation items per
# task (``spec.demo_limit``, evenly spread over the split; None = all: generation is the
# slow part of VQA and MLM on a CPU, and a field holds dozens of cells and thousands of
# pixels, so 100 fields measure detection and segmentation as closely as the few white cells
# of 400 fields measure their types) and what one scored item is (``spec.unit``).
#: the bar of every grounding gap (the drop of a grounded task's headline with the images
#: shuffled across items)
GAP_BAR = 0.20


def _reuse(data_dir: Path, synth_cfg) -> bool:
    manifest = data_dir / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        old = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return old.get("config") == to_dict(synth_cfg)


def prepare_data(out: Path, cfg) -> Tuple[Path, float]:
    """Generate (or reuse) the synthetic dataset under ``out/data``; returns it and seconds."""
    from unihema.synth import generate_dataset

    data_dir = out / "data"
    if _reuse(data_dir, cfg.synth):
        logger.info("reusing the synthetic dataset in %s (same generator config)", data_dir)
        return data_dir, 0.0
    logger.info("generating synthetic smears into %s", data_dir)
    t0 = time.perf_counter()
    # generate beside the old folder and swap, so no stale file of an older generation
    # survives and an interrupted run leaves the previous data intact
    staging = out / "data.partial"
    shutil.rmtree(staging, ignore_errors=True)
    generate_dataset(staging, cfg.synth)
    shutil.rmtree(data_dir, ignore_errors=True)
    staging.rename(data_dir)
    return data_dir, time.perf_counter() - t0


def demo_config(out: Path, quick: bool, config: Optional[str], overrides: Sequence[str]):
    preset = config or str(PRESETS / ("demo_quick.yaml" if quick else "demo.yaml"))
    data = out / "data"
    entries = [f"data.{s}.0.root={data}" for s in ("train", "val", "test")]
    return load_config(preset, entries + [f"train.output_dir={out}"] + list(overrides))


def _fit_trust(model_dir: Path, data_dir: Path) -> Optional[Any]:
    """Fit the per-cell trust state (``unihema/presets/demo_trust.yaml``: temperature,
    conformal sets, unknown-cell score and referral over the nine white-cell types) on the
    validation white cells and save it beside the model, so that ``unihema analyze`` and
    ``pipe.classify`` give each cell its set and unknown score (docs/trust.md). ``None``
    when the split holds no white cell."""
    from unihema.benchmark.trust import fit_trust

    cfg = load_config(str(PRESETS / "demo_trust.yaml"),
                      [f"data.{s}.0.root={data_dir}" for s in ("train", "val", "test")])
    try:
        state = fit_trust(model_dir, cfg, train_limit=1000)
    except ValueError as e:  # e.g. a --quick run whose validation split has no white cell
        logger.warning("no trust state fitted: %s", e)
        return None
    logger.info("trust state fitted on %d validation white cells: unknown score '%s', "
                "referral below probability %.3f", state.fitted_on.get("val_cells", 0),
                state.unknown_method, state.referral_threshold)
    return state


def _evaluate(model, cfg) -> Dict[str, Dict[str, float]]:
    from unihema.engine.data import build_task_splits
    from unihema.evaluation.grounding import grounding_metrics
    from unihema.evaluation.runner import evaluate_split
    from unihema.modeling.reading import ReadingCascade

    # the text tasks answer from the model's own reading, one cached reading per image
    predictor = ReadingCascade(model)
    metrics: Dict[str, Dict[str, float]] = {}
    for split in build_task_splits(cfg.data.test, cfg, train=False):
        spec = get_task(split.task)
        opts = {"restrict_to": list(WHITE_TYPES)} if spec.restricts else {}
        limit = spec.demo_limit
        metrics[split.task] = evaluate_split(predictor, split, batch_size=16, limit=limit,
                                             evaluator_options=opts)
        # how many items the figures rest on (classification: the white cells it is scored on)
        metrics[split.task]["n_scored"] = min(limit or len(split.dataset), len(split.dataset))
        if spec.restricts:
            metrics[split.task]["n_scored_white"] = sum(s.label in WHITE_TYPES
                                                        for s in split.samples)
        if spec.grounded:
            shuffled = evaluate_split(predictor, split, batch_size=16, limit=limit,
                                      shuffle_images=True)
            metrics[split.task].update(grounding_metrics(split.task, metrics[split.task],
                                                         shuffled))
    return metrics


def _headline_rows(metrics) -> List[List[str]]:
    rows = [["task", "metric", "value", "target", "met"]]
    for spec in specs():
        got = metrics.get(spec.name, {})
        for n, metric in enumerate((spec.headline, *spec.shown)):
            if metric.name not in got:
                continue
            v, bar = got[metric.name], metric.bar
            rows.append([spec.name, metric.label, f"{v:.3f}", f">= {bar:.2f}" if bar else "",
                         ("yes" if v >= bar else "NO") if bar else ""])
            if n == 0 and spec.per_class_prefix:  # the classes behind the mean
                p, label = spec.per_class_prefix, spec.per_class_label
                rows += [[spec.name, f"  {label} {k[len(p):]}", f"{x:.3f}", "", ""]
                         for k, x in got.items() if k.startswith(p)]
    for spec in specs():
        m = metrics.get(spec.name, {})
        if spec.grounded and "grounding_gap" in m:
            rows.append([spec.name, "with images shuffled", f"{m[spec.shuffled_metric]:.3f}",
                         "", ""])
            rows.append([spec.name, "grounding gap (drop)", f"{m['grounding_gap']:.3f}",
                         f">= {GAP_BAR:.2f}", "yes" if m["grounding_gap"] >= GAP_BAR else "NO"])
    return rows


def _scored_line(metrics) -> str:
    """``scored on: detect 100 fields, classify 2,120 crops (556 white cells), ...``."""
    parts = []
    for task in TASKS:
        n = metrics.get(task, {}).get("n_scored")
        if n is None:
            continue
        white = metrics[task].get("n_scored_white")
        parts.append(f"{task} {int(n):,} {get_task(task).unit}"
                     + (f" ({int(white):,} white cells)" if white is not None else ""))
    return "scored on: " + ", ".join(parts) if parts else ""


def _analyze_smear(model_dir: Path, out: Path, quick: bool, seed: int) -> Dict[str, Any]:
    """The lab's job on one synthetic camera field (1920 x 1440 px at 0.12 um/px, or 640 x 480
    with ``quick``): ``unihema analyze`` with the field's scale given, beside the field's exact
    truth. Writes ``out/smear/`` (the field and its truth) and ``out/analysis/`` (cells,
    summary, overlay, report.html); returns the counts per lineage, found and true."""
    from unihema.analysis.outputs import write_analysis
    from unihema.analysis.run import analyze
    from unihema.api import UniHemaPipeline
    from unihema.synth.smear import make_field, write_field

    width, height = (640, 480) if quick else (1920, 1440)
    field = make_field(width, height, um_per_px=0.12, seed=seed)
    write_field(out / "smear", field)
    pipe = UniHemaPipeline.from_pretrained(model_dir)
    result = analyze(pipe, out / "smear" / "field.png", um_per_px=field.um_per_px,
                     progress=False)
    paths = write_analysis(result, out / "analysis")
    truth = field.summary()["lineages"]
    found = result.summary.lineages
    rows = [["lineage", "found", "truth"]] + [
        [name, int(found.get(name, 0)), int(truth.get(name, 0))]
        for name in sorted(set(truth) | set(found))]
    return {"rows": rows, "report": paths["report.html"], "seconds": result.timings["total"],
            "size": f"{width} x {height}", "review": result.summary.needs_review,
            "cells": result.summary.n_cells}


def _showcase(model_dir: Path, data_dir: Path, out: Path, n: int = 2) -> Dict[str, Any]:
    """Overlays of two test fields, sample answers, and one question through the API."""
    from unihema.api import UniHemaPipeline
    from unihema.data.catalog import load_dataset
    from unihema.evaluation.visualize import draw_detections, draw_mask

    pipe = UniHemaPipeline.from_pretrained(model_dir)
    test = load_dataset("synthetic_smear", data_dir, "test")
    fields = [s for s in test if s.meta.get("kind") == "field" and s.qa][:n]
    files, qa_rows = [], [["image", "question", "truth", "model"]]
    for i, s in enumerate(fields):
        det, seg = out / f"detect_{i}.png", out / f"segment_{i}.png"
        draw_detections(s.image_path, pipe.detect(s.image_path)["objects"]).save(det)
        res = pipe.segment(s.image_path)
        draw_mask(s.image_path, res["mask"], res["classes"]).save(seg)
        files += [det.name, seg.name]
        for qa in s.qa[:6]:
            qa_rows.append([s.sample_id, qa.question, qa.answer,
                            pipe.ask(s.image_path, qa.question)["answer"]])
    question = "How many white blood cells are in the image?"
    api = {"image": fields[0].image_path, "question": question,
           "answer": pipe.ask(fields[0].image_path, question)["answer"]} if fields else {}
    return {"files": files, "qa": qa_rows, "api": api}


def run_demo(
    out: str | Path,
    *,
    quick: bool = False,
    config: Optional[str] = None,
    overrides: Sequence[str] = (),
    train: bool = True,
) -> int:
    """Run the demo into ``out``; returns 0 when the data checked out and training finished."""
    from unihema.data.catalog import get_adapter
    from unihema.data.check import check_dataset
    from unihema.data.preview import pick_samples, preview_grid
    from unihema.engine.data import build_task_splits
    from unihema.engine.trainer import Trainer
    from unihema.evaluation.runner import fit_temperature

    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = demo_config(out, quick, config, overrides)
    dump_config(cfg, out)
    data_dir, gen_s = prepare_data(out, cfg)
    report = check_dataset("synthetic_smear", data_dir, progress=False)
    report.write_json(out / "data_check.json")
    samples = get_adapter("synthetic_smear", data_dir).load("train")
    preview = preview_grid(pick_samples(samples, 12), out / "preview.png")
    data_rows: List[List[str]] = [["split", "samples", *TASKS]]
    for s in report.splits:
        data_rows.append([s.split, str(s.summary["samples"]),
                          *(str(s.summary["tasks"].get(t, 0)) for t in TASKS)])
    print("\nsupervision per task (samples):")
    print(plain_table(data_rows))
    print(f"data check: {'no problems' if report.ok else f'{len(report.problems)} problem(s)'}")
    if not report.ok:
        for p in report.problems[:20]:
            print(f"  {p}")
        return 1

    metrics: Dict[str, Dict[str, float]] = {}
    show: Dict[str, Any] = {"files": [], "qa": [], "api": {}}
    train_s = eval_s = 0.0
    trained = "not trained"
    trust = None
    smear: Dict[str, Any] = {}
    if train:
        t0 = time.perf_counter()
        trainer = Trainer(cfg)
        trainer.train(save=False)  # saved below, with the fitted temperature
        trained = trainer.stop_summary()
        val = [s for s in build_task_splits(cfg.data.val, cfg, train=False)
               if get_task(s.task).calibrated]
        if val:
            t = fit_temperature(trainer.model, val[0])
            logger.info("classifier temperature fitted on val: %.3f", t)
        model_dir = trainer.save(out / "model")
        trust = _fit_trust(model_dir, data_dir)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        metrics = _evaluate(trainer.model, cfg)
        atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
        show = _showcase(model_dir, data_dir, out)
        eval_s = time.perf_counter() - t0
        smear = _analyze_smear(model_dir, out, quick, cfg.synth.seed)

    total_s = time.perf_counter() - t_start
    head = _headline_rows(metrics)
    if metrics:
        print("\nheld-out test metrics (synthetic_smear/test):")
        print(plain_table(head, right_align_numbers=False))
        print(_scored_line(metrics))
        if show["api"]:
            print(f"\nPython API: UniHemaPipeline.from_pretrained('{out / 'model'}')"
                  f".ask(image, \"{show['api']['question']}\")[\"answer\"] -> "
                  f"{show['api']['answer']!r}")
    md = [
        "# unihema demo", "",
        f"Synthetic smears in `{data_dir}` (size {cfg.synth.size}, seed {cfg.synth.seed}), "
        f"generated in {gen_s:.1f} s; training {train_s:.0f} s ({trained}), "
        f"evaluation {eval_s:.0f} s, total {total_s:.0f} s.", "",
        "## Held-out test metrics", "", markdown_table(head) if metrics else "(not trained)", "",
        _scored_line(metrics), "",
        "Every task's full metrics: `metrics.json`.", "",
        "## Supervision per task (samples)", "", markdown_table(data_rows), "",
        f"Data check: {'no problems' if report.ok else f'{len(report.problems)} problem(s)'}.",
        "", "## Pictures", "", f"![preview]({preview.name})", "",
        *(f"![{f}]({f})" for f in show["files"]), "",
    ]
    if len(show["qa"]) > 1:
        md += ["## Sample questions", "", markdown_table(show["qa"]), ""]
    if smear:
        if trust is not None:
            smear["trust"] = (f"Each white cell carries a prediction set, an unknown-cell "
                              f"score and a referral from the trust state fitted on "
                              f"{trust.fitted_on.get('val_cells', 0)} validation white cells "
                              f"(`model/trust.json`; docs/trust.md).")
        md += ["## A whole smear field", "",
               f"`unihema analyze` on a synthetic {smear['size']} field at 0.12 um/px "
               f"({smear['cells']} cells found, {smear['review']} to review, "
               f"{smear['seconds']:.1f} s); the field's exact truth beside it:", "",
               markdown_table(smear["rows"]), "", *([smear["trust"], ""] if "trust" in smear
                                                     else []),
               f"The page a person reviews: `{smear['report']}`.", ""]
    if show["api"]:
        md += ["## Python API", "", "```python", "from unihema.api import UniHemaPipeline",
               f"pipe = UniHemaPipeline.from_pretrained('{out / 'model'}')",
               f"pipe.ask('{show['api']['image']}', '{show['api']['question']}')['answer']",
               f"# -> {show['api']['answer']!r}", "```", ""]
    atomic_write_text(out / "report.md", "\n".join(md) + "\n")
    if smear:
        print(f"\nwhole-smear analysis of a synthetic {smear['size']} field "
              f"({smear['seconds']:.1f} s): cells per lineage, found vs truth")
        print(plain_table(smear["rows"]))
        print(f"open the report a person reviews: {smear['report']}")
    print(f"\nwrote {out / 'report.md'} (+ preview.png, overlays, metrics.json, model/)")
    print(f"demo finished in {total_s:.1f} s (training {train_s:.0f} s: {trained})")
    return 0
