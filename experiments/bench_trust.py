"""Trust per cell on one protocol: calibration, conformal sets, unknown cells, referral.

    python experiments/bench_trust.py --model runs/trust/synthetic/model \
        --config configs/trust/synthetic.yaml --out runs/trust/bench_synthetic

Runs the model once over the config's cells (``data.val``: the calibration cells,
``data.train``: at most ``--train-limit`` training cells per entry, each ``data.test`` entry:
at most ``--limit`` cells) and caches them in ``--out/cells.safetensors`` (``--reuse`` reads
them back). Fits a trust state (:func:`unihema.trust.fitting.fit_state`, every registered
scorer) and scores it on each test entry (:func:`unihema.trust.fitting.evaluate_state`);
also scores variants of the text-side scorer: ``names`` with the generic bank (the default),
``names:vocab`` whose bank is every other cell name of the project's vocabulary in the same
category (it names the held-out types among many others: what an open vocabulary offers when
a laboratory lists the types it knows of), and ``knn+names``, the sum of the two scores each
standardised on the known validation cells. Writes ``trust_results.json`` / ``.md``,
``variants.md``, the reliability PNGs and ``timing.json``; with ``--save`` also writes the
state into the model folder (as ``unihema trust fit`` does).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _save_cells(path: Path, groups: Dict[str, object]) -> None:
    from safetensors.torch import save_file

    from unihema.utils import atomic_save, atomic_write_text

    tensors, meta = {}, {}
    for key, cells in groups.items():
        tensors[f"{key}.logits"] = cells.logits.contiguous()
        tensors[f"{key}.embeddings"] = cells.embeddings.contiguous()
        meta[key] = {"names": cells.names, "classes": cells.classes, "source": cells.source}
    atomic_save(path, lambda tmp: save_file(tensors, str(tmp)))
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta) + "\n")


def _load_cells(path: Path) -> Dict[str, object]:
    from safetensors.torch import load_file

    from unihema.trust.fitting import Cells

    tensors = load_file(str(path))
    meta = json.loads(path.with_suffix(".json").read_text())
    return {k: Cells(tensors[f"{k}.logits"], tensors[f"{k}.embeddings"], m["names"],
                     m["classes"], m["source"]) for k, m in meta.items()}


def _vocab_bank(classes: List[str]) -> List[str]:
    from unihema.data import vocab

    cats = {vocab.category(c) for c in classes if vocab.is_canonical(c)}
    parents = {p for c in classes for p in vocab.ancestors(c)}
    return [n for n in vocab.names(sorted(cats)) if n not in classes and n not in parents]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--limit", type=int, default=None, help="cells per test entry")
    p.add_argument("--val-limit", type=int, default=None, help="cells per val entry")
    p.add_argument("--train-limit", type=int, default=3000, help="cells per train entry")
    p.add_argument("--method", default="knn", help="the state's unknown scorer")
    p.add_argument("--target-accuracy", type=float, default=0.98)
    p.add_argument("--reuse", action="store_true", help="read cached cells from --out")
    p.add_argument("--save", action="store_true", help="write the state into the model")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from unihema.benchmark.models import load_model
    from unihema.config import load_config
    from unihema.trust.collect import fingerprint, known_classes, logit_scale, name_embedder
    from unihema.trust.fitting import evaluate_state, fit_state
    from unihema.trust.metrics import open_set_metrics
    from unihema.trust.run import collect_split, merge, model_folder, write_results
    from unihema.trust.unknown import FitData, build_scorer

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(args.config, args.overrides)
    timing: Dict[str, float] = {}
    t0 = time.time()
    loaded = load_model(args.model)
    classes = known_classes(cfg.data.val)
    cache = out / "cells.safetensors"
    if args.reuse and cache.is_file():
        groups = _load_cells(cache)
    else:
        t = time.time()
        groups = {"val": merge(collect_split(loaded, cfg, "val", classes,
                                             limit=args.val_limit))}
        timing["collect_val_s"] = time.time() - t
        t = time.time()
        groups["train"] = merge(collect_split(loaded, cfg, "train", classes,
                                              limit=args.train_limit))
        timing["collect_train_s"] = time.time() - t
        t = time.time()
        for i, cells in enumerate(collect_split(loaded, cfg, "test", classes,
                                                limit=args.limit)):
            groups[f"test{i}"] = cells
        timing["collect_test_s"] = time.time() - t
        _save_cells(cache, groups)
    val, train = groups["val"], groups["train"]
    tests = [c for k, c in groups.items() if k.startswith("test")]
    timing["cells"] = {k: len(c) for k, c in groups.items()}

    t = time.time()
    net = loaded.model
    embed = name_embedder(net)
    state = fit_state(val, train, method=args.method, embed_names=embed,
                      logit_scale=logit_scale(net), target_accuracy=args.target_accuracy,
                      fitted_on=dict(fingerprint(loaded), split="val", val=val.source,
                                     train=train.source))
    timing["fit_s"] = time.time() - t
    t = time.time()
    results = {"meta": {"model": str(model_folder(loaded)), "fitted_on": state.fitted_on,
                        "method": state.unknown_method, "classes": state.classes,
                        "temperature": state.temperature, "conformal": state.conformal,
                        "referral_threshold": state.referral_threshold}}
    for cells in tests:
        results[cells.source] = evaluate_state(state, cells)
    timing["evaluate_s"] = time.time() - t

    # variants of the text-side score, and a combination
    known_val = val.select(val.known)
    vocab = _vocab_bank(classes)
    v_names = build_scorer("names", {"other": vocab})
    v_tensors = v_names.fit(FitData(train.embeddings, train.labels, classes, embed))

    def standardised(method: str, cells) -> np.ndarray:
        ref = state.unknown_scores(known_val.logits, known_val.embeddings, method=method)
        s = state.unknown_scores(cells.logits, cells.embeddings, method=method)
        return ((s - ref.mean()) / ref.std().clamp(min=1e-8)).numpy()

    lines = ["| cells | variant | AUROC | FPR@95TPR | AUPR |", "|---|---|---|---|---|"]
    variants = {}
    for cells in tests:
        km = cells.known.numpy()
        if km.all():
            continue
        rows = {
            "names:vocab": v_names.score(cells.logits, cells.embeddings, v_tensors).numpy(),
            "knn+names": standardised("knn", cells) + standardised("names", cells),
            "knn+msp": standardised("knn", cells) + standardised("msp", cells),
        }
        variants[cells.source] = {}
        for name, s in rows.items():
            m = open_set_metrics(s[km], s[~km])
            variants[cells.source][name] = m
            lines.append(f"| {cells.source} | {name} | {m['auroc']:.3f} | {m['fpr@95tpr']:.3f} "
                         f"| {m['aupr']:.3f} |")
    results["meta"]["variants"] = variants
    results["meta"]["vocab_bank"] = vocab
    write_results(results, out)
    (out / "variants.md").write_text("\n".join(lines) + "\n")
    if args.save:
        state.save(model_folder(loaded))
    timing["total_s"] = time.time() - t0
    (out / "timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    print((out / "trust_results.md").read_text())
    print("\n".join(lines))
    print(json.dumps(timing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
