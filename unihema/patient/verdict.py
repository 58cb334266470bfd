"""The patient-level verdict of one patient's cells: diagnosis probabilities and the evidence.

:func:`patient_verdict` takes a loaded pipeline (``model`` + ``processor``), a trained
:class:`~unihema.patient.encoder.PatientEncoder` and the patient's cells, given as

* single-cell images: paths, a folder of them, arrays or PIL images (crops as the classify
  task reads them); or
* a whole-smear analysis (:class:`unihema.analysis.run.SmearAnalysis`): its white cells
  (lineage ``"white blood cell"``) are cut again from the fields (``inputs``: the images or
  folder the analysis read) at the model's scale, the window ``max(crop_size, 1.25 x the
  cell's longer side)`` as the training crops are cut; without ``inputs`` their gallery
  pictures are used (a wider window: less exact, said in ``warnings``).

It returns ``{"diagnosis", "probabilities": {diagnosis: p}, "embedding": [E] list, "n_cells",
"evidence": [{"index", "cell_id", "attention", "type", "image"}], "findings": [{"finding",
"similarity"}], "warnings": [...]}``: ``evidence`` the ``top`` cells the attention weighed
most (``attention``: the cell's weight averaged over branches, summing to 1 over the patient's
cells; ``cell_id`` the analysis's cell id, ``image`` the path when cells were given as files),
``findings`` the encoder's findings vocabulary ranked by similarity to the patient embedding
(the genetics the cells look like; not a test result).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch
from PIL import Image

from unihema.patient.encoder import PatientEncoder
from unihema.patient.features import embed_cells, text_embeddings

WHITE = "white blood cell"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def as_encoder(encoder: Union[str, Path, PatientEncoder]) -> PatientEncoder:
    return encoder if isinstance(encoder, PatientEncoder) else PatientEncoder.load(encoder)


def _is_analysis(obj: Any) -> bool:
    return hasattr(obj, "cells") and hasattr(obj, "summary") and hasattr(obj, "fields")


def cell_images(cells: Any) -> List[Any]:
    """Single-cell images of a path, a folder, or a list of paths / arrays / PIL images."""
    items = list(cells) if isinstance(cells, (list, tuple)) else [cells]
    out: List[Any] = []
    for item in items:
        if isinstance(item, (str, Path)) and Path(item).is_dir():
            out += sorted(p for p in Path(item).iterdir()
                          if p.suffix.lower() in IMAGE_SUFFIXES)
        elif isinstance(item, (str, Path)):
            if not Path(item).is_file():
                raise FileNotFoundError(f"{item}: no such cell image")
            out.append(Path(item))
        elif isinstance(item, (np.ndarray, Image.Image)):
            out.append(np.asarray(item))
        else:
            raise TypeError(f"cells: expected paths, a folder, arrays or PIL images, got "
                            f"{type(item).__name__}")
    if not out:
        raise ValueError("patient: no cell images given")
    return out


def analysis_crops(analysis, inputs: Any = None, side: int = 64):
    """``(crops uint8 [side, side, 3], cell ids, types)`` of the analysis's white cells (module
    docstring), cut from ``inputs`` when given, else from the gallery pictures."""
    from unihema.analysis.tiles import open_source

    cells = [c for c in analysis.cells if c.lineage == WHITE]
    if inputs is None:
        from io import BytesIO

        cells = [c for c in cells if c.id in analysis.thumbnails]
        crops = [np.array(Image.open(BytesIO(analysis.thumbnails[c.id])).convert("RGB")
                            .resize((side, side), Image.BILINEAR)) for c in cells]
        return crops, [c.id for c in cells], [c.type for c in cells]
    from unihema.analysis.run import resolve_inputs

    named = dict(resolve_inputs(inputs))
    factors = {f.name: f.factor for f in analysis.fields}
    by_field: Dict[str, list] = {}
    for c in cells:
        by_field.setdefault(c.field, []).append(c)
    order = {c.id: i for i, c in enumerate(cells)}
    out: List[Optional[np.ndarray]] = [None] * len(cells)
    for name, group in by_field.items():
        if name not in named:
            raise ValueError(f"patient: the analysis's field '{name}' is not among the inputs "
                             f"given ({sorted(named)[:5]})")
        src = open_source(named[name])
        try:
            f = factors.get(name, 1.0)
            for c in group:
                x0, y0, x1, y1 = c.box
                win = max(side, math.ceil(1.25 * max(x1 - x0, y1 - y0) * f)) / f
                cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                a, b = int(round(cx - win / 2)), int(round(cy - win / 2))
                w = max(1, int(round(win)))
                xa, ya = max(0, a), max(0, b)
                xb, yb = min(src.width, a + w), min(src.height, b + w)
                patch = src.read((xa, ya, xb, yb)) if xb > xa and yb > ya else None
                fill = np.median(patch.reshape(-1, 3), 0) if patch is not None else 255
                canvas = np.empty((w, w, 3), np.uint8)
                canvas[:] = np.asarray(fill, np.uint8)
                if patch is not None:
                    canvas[ya - b:yb - b, xa - a:xb - a] = patch
                out[order[c.id]] = np.array(Image.fromarray(canvas).resize(
                    (side, side), Image.BOX if w > side else Image.BILINEAR))
        finally:
            src.close()
    return [o for o in out if o is not None], [c.id for c in cells], [c.type for c in cells]


@torch.no_grad()
def patient_verdict(pipe, cells_or_analysis: Any, encoder: Union[str, Path, PatientEncoder],
                    *, top: int = 8, inputs: Any = None, batch_size: int = 64
                    ) -> Dict[str, Any]:
    """The patient-level prediction of the cells (module docstring)."""
    from unihema.patient.cohort import check_cell_model

    enc = as_encoder(encoder)
    model, processor = pipe.model, pipe.processor
    types = list(enc.meta.get("types") or [])
    warnings: List[str] = []
    ids: List[Optional[int]] = []
    kinds: List[Optional[str]] = []
    if _is_analysis(cells_or_analysis):
        side = int(processor.config.crop_size or model.config.reading.crop_size or 64)
        images, ids, kinds = analysis_crops(cells_or_analysis, inputs, side)
        if inputs is None:
            warnings.append("cells taken from the report's gallery pictures (a wider window "
                            "than the training crops); pass the analysed images for exact crops")
        if not images:
            raise ValueError("patient: the analysis found no white cells")
    else:
        images = cell_images(cells_or_analysis)
        ids = [None] * len(images)
        kinds = [None] * len(images)
    if not types:
        raise ValueError("patient encoder: its meta names no cell types (train it with "
                         "`unihema patient train`)")
    w = check_cell_model(enc, model)
    if w:
        warnings.append(w)
    emb, probs = embed_cells(model, processor, images, types, batch_size)
    out = enc.encode([emb])
    p = out.logits[0].softmax(-1)
    weights = out.cell_weights()[0, :len(emb)]
    order = weights.argsort(descending=True)[:top].tolist()
    evidence = []
    for i in order:
        item = {"index": i, "cell_id": ids[i], "attention": round(float(weights[i]), 5),
                "type": kinds[i] or types[int(probs[i].argmax())]}
        if isinstance(images[i], Path):
            item["image"] = str(images[i])
        evidence.append(item)
    findings = []
    vocab = list(enc.meta.get("findings_vocab") or [])
    if vocab:
        t = enc.embed_text(text_embeddings(model, vocab))
        sims = t @ out.embedding[0]
        findings = [{"finding": vocab[int(j)], "similarity": round(float(sims[j]), 4)}
                    for j in sims.argsort(descending=True)[:5]]
    probs_d = {d: round(float(v), 4) for d, v in zip(enc.diagnoses, p)}
    return {"diagnosis": enc.diagnoses[int(p.argmax())], "probabilities": probs_d,
            "embedding": [round(float(v), 6) for v in out.embedding[0]],
            "n_cells": len(emb), "evidence": evidence, "findings": findings,
            "warnings": warnings,
            "_pictures": {e["index"]: _picture(images[e["index"]]) for e in evidence}}


def _picture(image: Any) -> np.ndarray:
    from unihema.data.io import read_image

    return read_image(image) if isinstance(image, (str, Path)) else np.asarray(image)


def public(verdict: Dict[str, Any]) -> Dict[str, Any]:
    """The verdict without its in-memory pictures (``_pictures``): JSON-ready."""
    return {k: v for k, v in verdict.items() if not k.startswith("_")}


def attach_verdict(pipe, analysis, encoder: Union[str, Path, PatientEncoder], inputs: Any,
                   out: Union[str, Path], quiet: bool = False) -> Dict[str, Any]:
    """The verdict of an analysis's white cells (cut from ``inputs``), set as
    ``analysis.patient`` (the report's patient section shows it) and written to
    ``<out>/patient.json``; one line printed unless ``quiet``."""
    import json

    from unihema.utils import atomic_write_text

    verdict = patient_verdict(pipe, analysis, encoder, inputs=inputs)
    analysis.patient = verdict
    atomic_write_text(Path(out) / "patient.json", json.dumps(public(verdict), indent=2))
    if not quiet:
        top = sorted(verdict["probabilities"].items(), key=lambda kv: -kv[1])[:3]
        print(f"patient: {verdict['diagnosis']} (" + ", ".join(f"{d} {p:.2f}" for d, p in top)
              + f") from {verdict['n_cells']} white cells; evidence in report.html")
        for w in verdict["warnings"]:
            print(f"note: {w}")
    return verdict
