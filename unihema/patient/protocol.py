"""The patient-level protocol: ``k`` patient-level folds, probes and retrieval, one table.

For each fold the other folds train; the fold's patients are scored. Feature sets compared
(:data:`FEATURES`, a registry: add one with ``@FEATURES.register("name")``):

* ``attention encoder``: the :class:`~unihema.patient.encoder.PatientEncoder` trained on the
  training folds (diagnosis + findings alignment), its frozen patient embeddings;
* ``mean pooling``: the mean of the patient's cell embeddings;
* ``differential (predicted)``: the share of the patient's cells of each white-cell type, the
  type being the model's classify choice;
* ``differential (truth)``: the same over the cells' true types (synthetic cohorts only:
  every cell's type known).

Scores per feature set (mean and standard deviation over folds): balanced accuracy of kNN
(``k = 5``) and of logistic regression on the standardised features, of the encoder's own
head (encoder only), precision@5 (the share of same-diagnosis patients among the 5 nearest
training patients). The encoder also ranks findings: ``findings recall@3`` (for each patient
with findings, the share of them among the 3 findings of the vocabulary nearest its embedding)
and ``text -> patient precision@5`` (the patient's findings text as a query over the fold's
patients: the share of the 5 retrieved with the query patient's diagnosis). Evidence (cohorts whose
``meta["cell_variants"]`` marks the abnormal cells, synthetic truth): ``evidence_at_8``, the
share of abnormal cells among the 8 cells each test patient's attention weighs most, beside
``abnormal_share``, their share among all the patient's cells. Where the errors
lie: ``knn_confusion`` (per feature set, the kNN predictions of all folds, truth rows,
predicted columns) and ``knn_recall`` (its recall per diagnosis, also in the markdown).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from unihema.patient.encoder import EncoderConfig
from unihema.patient.features import CellFeatures
from unihema.patient.probes import (balanced_accuracy, knn_predict, logistic_regression,
                                    precision_at_k, recall_at_k, standardise)
from unihema.patient.train import fit_encoder
from unihema.registry import Registry
from unihema.utils import atomic_write_text

logger = logging.getLogger(__name__)

#: name -> ``fn(feats, bags) -> [P, F]`` patient features without training, or ``None``
#: when the cohort cannot give them (e.g. unknown cell types)
FEATURES: Registry[Callable] = Registry("patient features")
ENCODER = "attention encoder"
K_NEIGHBOURS = 5
FINDINGS_K = 3
COLUMNS = [("knn", "kNN (k=5) bal. acc."), ("lr", "LR bal. acc."), ("head", "head bal. acc."),
           ("p_at_5", "precision@5"), ("findings_r_at_3", "findings recall@3"),
           ("text_p_at_5", "text->patient precision@5")]


@FEATURES.register("mean pooling")
def mean_pooling(feats: CellFeatures, bags) -> torch.Tensor:
    return torch.stack([e.mean(0) for e in feats.embeddings])


@FEATURES.register("differential (predicted)")
def differential_predicted(feats: CellFeatures, bags) -> torch.Tensor:
    c = len(feats.types)
    return torch.stack([torch.bincount(p.argmax(1), minlength=c).float() / len(p)
                        for p in feats.probs])


@FEATURES.register("differential (truth)")
def differential_truth(feats: CellFeatures, bags) -> Optional[torch.Tensor]:
    types = [list(getattr(b, "cell_types", None) or []) for b in bags]
    if not all(t and all(x is not None for x in t) for t in types):
        return None
    names = sorted({x for t in types for x in t})
    idx = {n: i for i, n in enumerate(names)}
    return torch.stack([torch.bincount(torch.as_tensor([idx[x] for x in t]),
                                       minlength=len(names)).float() / len(t) for t in types])


def diagnoses_of(bags) -> List[str]:
    """Sorted distinct first labels; a bag without a label is an error naming it."""
    unlabelled = [b.patient_id for b in bags if not b.labels]
    if unlabelled:
        raise ValueError(f"patients without a diagnosis (labels[0]): {unlabelled[:5]}")
    return sorted({b.labels[0] for b in bags})


def findings_vocabulary(bags) -> List[str]:
    return sorted({f for b in bags for f in b.findings})


def _probe_scores(x: torch.Tensor, y: torch.Tensor, tr: torch.Tensor, te: torch.Tensor,
                  n_cls: int, confusion: Optional[torch.Tensor] = None) -> Dict[str, float]:
    xtr, xte = standardise(x[tr], x[te])
    knn = knn_predict(xtr, y[tr].tolist(), xte, K_NEIGHBOURS)
    lr = logistic_regression(xtr, y[tr].tolist(), xte, n_classes=n_cls).argmax(1)
    if confusion is not None:  # kNN's, summed over folds: truth rows, predicted columns
        confusion.index_put_((y[te], knn), torch.ones(len(te), dtype=torch.long),
                             accumulate=True)
    return {"knn": balanced_accuracy(y[te].tolist(), knn.tolist()),
            "lr": balanced_accuracy(y[te].tolist(), lr.tolist()),
            "p_at_5": precision_at_k(xtr, y[tr].tolist(), xte, y[te].tolist(), K_NEIGHBOURS)}


def _evidence(weights: torch.Tensor, bags: Sequence[Any], rows: torch.Tensor, top: int = 8):
    """For test patients whose cells are marked abnormal or not (``meta["cell_variants"]``:
    ``None`` for a normal cell, synthetic truth), ``(share of abnormal cells among each
    patient's top-``top`` attention cells, share of abnormal cells overall)``, averaged over
    the patients that have any; ``None`` when none has."""
    hit, base = [], []
    for r, b in zip(rows.tolist(), bags):
        marks = (getattr(b, "meta", None) or {}).get("cell_variants")
        if not marks or len(marks) != len(b.cells) or all(m is None for m in marks):
            continue
        w = weights[r, :len(marks)]
        idx = w.topk(min(top, len(marks))).indices.tolist()
        hit.append(sum(marks[i] is not None for i in idx) / len(idx))
        base.append(sum(m is not None for m in marks) / len(marks))
    if not hit:
        return None
    return sum(hit) / len(hit), sum(base) / len(base)


def _summarise(per_fold: List[Dict[str, float]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key in [k for k, _ in COLUMNS] + ["evidence_at_8", "abnormal_share"]:
        vals = [f[key] for f in per_fold if key in f and not math.isnan(f[key])]
        if vals:
            t = torch.tensor(vals, dtype=torch.double)
            out[key] = round(float(t.mean()), 4)
            out[key + "_sd"] = round(float(t.std(unbiased=False)), 4)
    return out


def evaluate(feats: CellFeatures, bags: Sequence[Any], folds: Sequence[Sequence[str]], *,
             text_table: Optional[Dict[str, torch.Tensor]] = None,
             config: Optional[EncoderConfig] = None,
             features: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """The protocol's scores (module docstring) of ``bags`` with cell features ``feats``
    over ``folds`` (patient ids per fold, disjoint, covering the bags).

    ``text_table``: findings text -> ``[E]`` embedding by the model's text encoder, for
    every bag's ``findings_text()`` and every finding of the vocabulary (without it the
    encoder trains on the diagnosis alone and no findings scores are given).
    Returns ``{"rows": [{"features", <score>, <score>_sd, ...}], "folds": per fold,
    "diagnoses", "knn_confusion", "knn_recall", "patients", "cells", "seconds"}``.
    """
    t0 = time.perf_counter()
    ids = [b.patient_id for b in bags]
    if feats.patient_ids != ids:
        feats = feats.subset(ids)
    pos = {p: i for i, p in enumerate(ids)}
    seen = [p for f in folds for p in f]
    if sorted(seen) != sorted(ids):
        raise ValueError(f"folds cover {len(set(seen))} patients ({len(seen)} entries), the "
                         f"cohort has {len(ids)}: the folds file belongs to another cohort")
    diagnoses = diagnoses_of(bags)
    y = torch.as_tensor([diagnoses.index(b.labels[0]) for b in bags])
    names = list(features) if features is not None else [ENCODER] + list(FEATURES.names())
    fixed = {n: FEATURES.get(n)(feats, bags) for n in names if n != ENCODER}
    fixed = {n: x for n, x in fixed.items() if x is not None}
    vocab = findings_vocabulary(bags)
    texts = [b.findings_text() for b in bags]
    align = text_table is not None
    if align:
        uniq = sorted(set(texts))
        t_emb = torch.stack([text_table[t] for t in uniq])
        t_ids = torch.as_tensor([uniq.index(t) for t in texts])
        v_emb = torch.stack([text_table[f] for f in vocab]) if vocab else None
    per: Dict[str, List[Dict[str, float]]] = {n: [] for n in names if n == ENCODER or
                                              n in fixed}
    confusion = {n: torch.zeros(len(diagnoses), len(diagnoses), dtype=torch.long) for n in per}
    for k, fold in enumerate(folds):
        te = torch.as_tensor(sorted(pos[p] for p in fold))
        tr = torch.as_tensor(sorted(set(range(len(ids))) - set(te.tolist())))
        for n, x in fixed.items():
            per[n].append(_probe_scores(x, y, tr, te, len(diagnoses), confusion[n]))
        if ENCODER not in per:
            continue
        enc = fit_encoder([feats.embeddings[i] for i in tr.tolist()], y[tr].tolist(),
                          diagnoses, config,
                          text_embeddings=t_emb if align else None,
                          text_ids=t_ids[tr].tolist() if align else None)
        out = enc.encode(feats.embeddings)
        s = _probe_scores(out.embedding, y, tr, te, len(diagnoses), confusion[ENCODER])
        s["head"] = balanced_accuracy(y[te].tolist(), out.logits[te].argmax(1).tolist())
        if align:
            with torch.no_grad():
                e_te = out.embedding[te]
                if v_emb is not None:
                    rel = [[vocab.index(f) for f in bags[i].findings] for i in te.tolist()]
                    s["findings_r_at_3"] = recall_at_k(e_te @ enc.embed_text(v_emb).t(), rel,
                                                       FINDINGS_K)
                q = enc.embed_text(t_emb[t_ids[te]])                     # [n_te, E]
                top = (q @ e_te.t()).topk(min(K_NEIGHBOURS, len(te)), dim=1).indices
                s["text_p_at_5"] = float((y[te][top] == y[te][:, None]).double().mean())
        ev = _evidence(out.cell_weights(), [bags[i] for i in te.tolist()], te)
        if ev is not None:
            s["evidence_at_8"], s["abnormal_share"] = ev
        s["train_seconds"] = enc.meta.get("train_seconds", 0.0)
        per[ENCODER].append(s)
        logger.info("fold %d/%d: %s", k + 1, len(folds), ", ".join(
            f"{n} kNN {v[-1]['knn']:.3f}" for n, v in per.items()))
    rows = [{"features": n, **_summarise(v)} for n, v in per.items()]
    recall = {n: {d: round(float(c[i, i]) / max(1, int(c[i].sum())), 4)
                  for i, d in enumerate(diagnoses)} for n, c in confusion.items()}
    return {"rows": rows, "folds": {n: v for n, v in per.items()}, "diagnoses": diagnoses,
            "knn_confusion": {n: c.tolist() for n, c in confusion.items()},
            "knn_recall": recall,
            "patients": len(ids), "cells": sum(len(e) for e in feats.embeddings),
            "findings_vocabulary": vocab, "seconds": round(time.perf_counter() - t0, 2)}


def goals(result: Dict[str, Any]) -> List[str]:
    """One line per goal of the synthetic benchmark, saying whether it is met and by how much:
    the encoder beats mean pooling by >= 0.05 balanced accuracy (kNN and LR compared probe by
    probe) and beats the differential; its precision@5 >= 0.80."""
    rows = {r["features"]: r for r in result["rows"]}
    enc = rows.get(ENCODER)
    if enc is None:
        return []
    out = []
    for probe in ("knn", "lr"):
        for base in ("mean pooling", "differential (predicted)", "differential (truth)"):
            if base in rows and probe in rows[base]:
                d = enc[probe] - rows[base][probe]
                need = 0.05 if base == "mean pooling" else 0.0
                ok = round(d, 4) >= need if base == "mean pooling" else round(d, 4) > 0
                out.append(f"{'met' if ok else 'MISSED'}: encoder {probe} {enc[probe]:.3f} vs "
                           f"{base} {rows[base][probe]:.3f} ({d:+.3f}; goal "
                           f"{'>= +0.05' if need else '> 0'})")
    if "p_at_5" in enc:
        out.append(f"{'met' if enc['p_at_5'] >= 0.8 else 'MISSED'}: encoder precision@5 "
                   f"{enc['p_at_5']:.3f} (goal >= 0.80)")
    return out


def markdown(result: Dict[str, Any]) -> str:
    """The table: one row per feature set, ``mean +- sd`` over folds, ``-`` where a score does
    not apply; then the goals."""
    head = "| features | " + " | ".join(t for _, t in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for r in result["rows"]:
        cells = [f"{r[k]:.3f} ± {r[k + '_sd']:.3f}" if k in r else "-" for k, _ in COLUMNS]
        lines.append(f"| {r['features']} | " + " | ".join(cells) + " |")
    info = (f"\n{result['patients']} patients, {result['cells']} cells, "
            f"{len(result['diagnoses'])} diagnoses ({', '.join(result['diagnoses'])}), "
            f"{len(next(iter(result['folds'].values())))} patient-level folds")
    enc = next((r for r in result["rows"] if r["features"] == ENCODER), {})
    if "evidence_at_8" in enc:
        info += (f"\n\nEvidence: of the 8 cells the encoder weighed most in each test patient "
                 f"with abnormal cells, {enc['evidence_at_8']:.3f} ± {enc['evidence_at_8_sd']:.3f}"
                 f" are abnormal (truth), against {enc['abnormal_share']:.3f} of all their cells.")
    recall = result.get("knn_recall", {})
    if recall:
        diags = result["diagnoses"]
        info += ("\n\nkNN (k=5) recall per diagnosis, all folds:\n\n| features | "
                 + " | ".join(diags) + " |\n|" + "---|" * (len(diags) + 1) + "\n"
                 + "".join(f"| {n} | " + " | ".join(f"{r[d]:.2f}" for d in diags) + " |\n"
                           for n, r in recall.items()))
    g = goals(result)
    return "\n".join(lines) + "\n" + info + "\n" + "".join(f"\n* {x}" for x in g) + "\n"


def write_results(result: Dict[str, Any], out: Path) -> Dict[str, Path]:
    """``patient_eval.json`` and ``patient_eval.md`` into ``out`` (atomically)."""
    out = Path(out)
    doc = {**result, "goals": goals(result)}
    return {"json": atomic_write_text(out / "patient_eval.json", json.dumps(doc, indent=2)),
            "md": atomic_write_text(out / "patient_eval.md", markdown(result))}
