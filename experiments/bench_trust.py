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
a laboratory lists the types it knows of), ``names:none`` with an empty bank (one minus the
best trained-name similarity: the bank's part in the score), and ``knn+names``, the sum of
the two scores each standardised on the known validation cells. Writes
``trust_results.json`` / ``.md``, ``variants.md``, the reliability PNGs and ``timing.json``;
with ``--save`` also writes the state into the model folder (as ``unihema trust fit`` does).

    python experiments/bench_trust.py --oracle runs/trust/synth \
        --config configs/trust/synthetic.yaml

prints instead what a detector that reads every white cell's attributes perfectly could reach
on the synthetic test split (no model runs). The generator draws a cell's look from its
attributes alone (:mod:`unihema.synth.profiles`), so these are bounds for any scorer on the
pixels: ``known only`` scores a cell by minus the log of its attributes' probability under the
trained types' profiles (mixed by their share of the training cells), all an open-set method
can know; ``ceiling`` by the likelihood ratio of the held-out types' profiles against the
trained ones, which knows what the held-out types look like.
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


def attribute_oracle(root: Path, known: List[str], white: List[str]) -> Dict[str, object]:
    """AUROC (and per held-out type) of the two attribute oracles on ``root``'s test split."""
    import math
    from collections import Counter

    import numpy as np

    from unihema.synth.profiles import WHITE_PROFILES
    from unihema.trust.metrics import open_set_metrics

    def cells(split):
        path = root / split / "crops.jsonl"
        rows = [json.loads(line) for line in path.open()] if path.is_file() else []
        return [r for r in rows if r["label"] in white]

    def log_p(attrs, cell_type):
        total = 0.0
        for key, dist in WHITE_PROFILES[cell_type].items():
            value = ((attrs["granularity"], attrs["granule_type"], attrs["granule_colour"])
                     if key == "granules" else attrs[key])
            total += math.log(dist.get(value, 1e-9))
        return total

    # the trained types' shares: of the root's training split, else of its validation split
    share = Counter(r["label"] for r in cells("train") or cells("val") if r["label"] in known)
    held_out = [t for t in white if t not in known]
    n = sum(share.values())

    def mix(attrs, types, weights):
        return math.log(sum(w * math.exp(log_p(attrs, t)) for t, w in zip(types, weights)))

    test = cells("test")
    names = np.array([r["label"] for r in test])
    km = np.isin(names, known)
    scores = {
        "known only": np.array([-mix(r["attributes"], known, [share[t] / n for t in known])
                                for r in test]),
        "ceiling": np.array([mix(r["attributes"], held_out, [1 / len(held_out)] * len(held_out))
                             - mix(r["attributes"], known, [share[t] / n for t in known])
                             for r in test]),
    }
    out: Dict[str, object] = {}
    for name, s in scores.items():
        row = open_set_metrics(s[km], s[~km])
        row["per_type"] = {t: open_set_metrics(s[km], s[names == t])["auroc"]
                           for t in held_out}
        out[name] = row
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model")
    p.add_argument("--config", required=True)
    p.add_argument("--out")
    p.add_argument("--oracle", metavar="ROOT", help="the attribute oracles on a synthetic root")
    p.add_argument("--limit", type=int, default=None, help="cells per test entry")
    p.add_argument("--val-limit", type=int, default=None, help="cells per val entry")
    p.add_argument("--train-limit", type=int, default=3000, help="cells per train entry")
    p.add_argument("--method", default="names", help="the state's unknown scorer")
    p.add_argument("--target-accuracy", type=float, default=0.98)
    p.add_argument("--reuse", action="store_true", help="read cached cells from --out")
    p.add_argument("--save", action="store_true", help="write the state into the model")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from unihema.benchmark.models import load_model
    from unihema.config import load_config
    from unihema.benchmark.trust_cells import fingerprint, known_classes, logit_scale, name_embedder
    from unihema.trust.fitting import evaluate_state, fit_state
    from unihema.trust.metrics import open_set_metrics
    from unihema.benchmark.trust import collect_split, merge, model_folder, write_results
    from unihema.trust.unknown import FitData, build_scorer

    torch.set_num_threads(1)
    cfg = load_config(args.config, args.overrides)
    if args.oracle:
        white = [c for c in cfg.data.test[0].candidates["classify"] if not c.startswith("-")]
        print(json.dumps(attribute_oracle(Path(args.oracle), known_classes(cfg.data.val),
                                          white), indent=2))
        return 0
    if not (args.model and args.out):
        p.error("--model and --out are required (or --oracle ROOT)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
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
    v_none = build_scorer("names", {"other": []})
    n_tensors = v_none.fit(FitData(train.embeddings, train.labels, classes, embed))

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
            "names:none": v_none.score(cells.logits, cells.embeddings, n_tensors).numpy(),
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
