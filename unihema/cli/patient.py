"""``unihema patient``: patient-level evaluation, encoder training and retrieval.

    unihema patient eval --model DIR --cohort DIR [--folds 5] [--out DIR]
    unihema patient train --model DIR --cohort DIR --out DIR
    unihema patient retrieve --model DIR --reference COHORT --patient DIR|ID [--encoder DIR]

docs/patient.md describes the cohort layout, the protocol and the encoder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EPILOG = """examples:
  unihema data cohort --out /tmp/cohort --patients 60 --cells 60:80
  unihema patient eval --model runs/demo/model --cohort /tmp/cohort
  unihema patient train --model runs/demo/model --cohort /tmp/cohort --out /tmp/encoder
  unihema patient retrieve --model runs/demo/model --reference /tmp/cohort \\
      --patient P0007 --encoder /tmp/encoder"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a save_pretrained model folder (embeds the "
                   "cells and the findings text)")
    p.add_argument("--cache", default=None, help="cell-embedding cache folder (default: "
                   "<cohort>/cache)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or mps")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _encoder_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, default=None, help="encoder training epochs")
    p.add_argument("--seed", type=int, default=0, help="fold drawing and training seed")


def add_patient_parser(sub) -> None:
    p = sub.add_parser("patient", help="patient level: evaluate, train an encoder, retrieve",
                       description="Patient-level diagnosis from a patient's cells: a gated "
                       "attention encoder over the model's cell embeddings, aligned with the "
                       "genetic findings through the model's text encoder.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ps = p.add_subparsers(dest="patient_command", metavar="SUBCOMMAND")
    e = ps.add_parser("eval", help="the patient-level protocol on a cohort (k folds)")
    _common(e)
    _encoder_options(e)
    e.add_argument("--cohort", required=True, help="a cohort folder (cohort.jsonl)")
    e.add_argument("--folds", type=int, default=5, help="patient-level folds (default 5)")
    e.add_argument("--folds-file", default=None, help="folds.json to read or write (default "
                   "<cohort>/folds.json)")
    e.add_argument("--out", default=None, help="where patient_eval.md/.json go (default "
                   "<cohort>/eval)")
    e.add_argument("--json", action="store_true", help="print patient_eval.json on stdout")
    e.set_defaults(func=run_eval)
    t = ps.add_parser("train", help="train a patient encoder on a whole cohort")
    _common(t)
    _encoder_options(t)
    t.add_argument("--cohort", required=True, help="a cohort folder (cohort.jsonl)")
    t.add_argument("--out", required=True, help="the encoder folder to write")
    t.set_defaults(func=run_train)
    r = ps.add_parser("retrieve", help="the reference patients nearest a patient")
    _common(r)
    _encoder_options(r)
    r.add_argument("--reference", required=True, help="the reference cohort folder")
    r.add_argument("--patient", required=True, help="a folder of the patient's cell images, "
                   "or a patient id of the reference (left out of its own neighbours)")
    r.add_argument("--encoder", default=None, help="a patient encoder folder (default: one "
                   "trained on the reference, kept in its cache)")
    r.add_argument("--k", type=int, default=5, help="patients listed (default 5)")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.set_defaults(func=run_retrieve)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def _load(args):
    from unihema.api import UniHemaPipeline

    return UniHemaPipeline.from_pretrained(args.model, device=args.device)


def _config(args):
    from unihema.patient.encoder import EncoderConfig

    cfg = EncoderConfig(seed=args.seed)
    if args.epochs is not None:
        cfg.epochs = args.epochs
    EncoderConfig(**cfg.__dict__)  # validated
    return cfg


def run_eval(args: argparse.Namespace) -> int:
    from unihema.patient.cohort import run_protocol
    from unihema.patient.protocol import markdown

    if args.folds < 2:
        raise ValueError(f"--folds must be >= 2, got {args.folds}")
    pipe = _load(args)
    root = Path(args.cohort)
    out = Path(args.out) if args.out else (root if root.is_dir() else root.parent) / "eval"
    result = run_protocol(pipe.model, pipe.processor, root, out, k=args.folds, seed=args.seed,
                          folds_file=args.folds_file, cache_dir=args.cache,
                          config=_config(args), progress=not args.no_progress and not args.json)
    if args.json:
        print((out / "patient_eval.json").read_text())
    else:
        print(markdown(result))
        print(f"wall time {result['wall_seconds']:.0f} s (cell embeddings "
              f"{result['embed_seconds']:.0f} s); written to {out}/patient_eval.md, .json")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from unihema.patient.cohort import cohort_features, train_encoder

    pipe = _load(args)
    bags, feats = cohort_features(pipe.model, pipe.processor, args.cohort,
                                  cache_dir=args.cache, progress=not args.no_progress)
    enc = train_encoder(pipe.model, bags, feats, _config(args))
    enc.save(args.out)
    print(f"patient encoder trained on {len(bags)} patients ({', '.join(enc.diagnoses)}) in "
          f"{enc.meta['train_seconds']:.1f} s; written to {args.out}")
    return 0


def run_retrieve(args: argparse.Namespace) -> int:
    from unihema.patient.cohort import (check_cell_model, cohort_features, nearest, reference,
                                        train_encoder)
    from unihema.patient.encoder import PatientEncoder
    from unihema.patient.features import cell_types, embed_cells, model_fingerprint
    from unihema.patient.verdict import cell_images

    if args.k < 1:
        raise ValueError(f"--k must be >= 1, got {args.k}")
    pipe = _load(args)
    bags, feats = cohort_features(pipe.model, pipe.processor, args.reference,
                                  cache_dir=args.cache, progress=not args.no_progress)
    ref_root = Path(args.reference)
    ref_root = ref_root if ref_root.is_dir() else ref_root.parent
    if args.encoder:
        enc = PatientEncoder.load(args.encoder)
    else:
        cache = Path(args.cache) if args.cache else ref_root / "cache"
        path = cache / f"encoder-{model_fingerprint(pipe.model)[:12]}-seed{args.seed}"
        if (path / "patient_encoder.json").is_file():
            enc = PatientEncoder.load(path)
        else:
            enc = train_encoder(pipe.model, bags, feats, _config(args))
            enc.save(path)
            print(f"patient encoder trained on the reference ({len(bags)} patients), kept in "
                  f"{path}")
    warning = check_cell_model(enc, pipe.model)
    ids = {b.patient_id: i for i, b in enumerate(bags)}
    exclude = None
    if args.patient in ids and not Path(args.patient).exists():
        exclude = args.patient
        cells = feats.embeddings[ids[args.patient]]
        query_name = f"reference patient {args.patient} ({bags[ids[args.patient]].diagnosis})"
    else:
        images = cell_images(args.patient)
        cells, _ = embed_cells(pipe.model, pipe.processor, images,
                               enc.meta.get("types") or cell_types(pipe.model))
        query_name = f"{args.patient} ({len(images)} cells)"
    out = enc.encode([cells])
    probs = out.logits[0].softmax(-1)
    hits = nearest(out.embedding[0], reference(enc, feats), bags, args.k, exclude)
    result = {"query": query_name, "probabilities": {d: round(float(v), 4) for d, v in
                                                     zip(enc.diagnoses, probs)},
              "nearest": hits, "warnings": [warning] if warning else []}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{query_name}: predicted " + ", ".join(
        f"{d} {p:.2f}" for d, p in sorted(result["probabilities"].items(),
                                           key=lambda kv: -kv[1])))
    print(f"nearest {len(hits)} of {len(bags)} reference patients:")
    for h in hits:
        print(f"  {h['patient_id']}  {h['diagnosis']}  similarity {h['similarity']:.3f}  "
              f"findings: {'; '.join(h['findings']) or '-'}")
    if warning:
        print(f"warning: {warning}")
    return 0
