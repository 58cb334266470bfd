"""Cell embeddings of patient bags with a unihema model, batched and cached on disk.

Each cell crop is read as the classify task reads a single white cell: the processor's classify
item (resized to the model's ``crop_size``) with the classify prompt over the candidate
``types`` (:func:`cell_types`). The model's classify prediction gives per cell its
``embedding [D]`` (unit norm, the space where the head compares cells with class names and
where :func:`text_embeddings` puts any text) and its ``probs [C]`` over ``types`` (the
temperature-scaled probabilities the differential baseline counts).

The cache: ``<cache_dir>/cells-<model fingerprint[:12]>-<cohort key[:12]>.safetensors``, one
file per (model, cohort, types), holding ``embeddings [T, D]``, ``probs [T, C]`` and
``offsets [P + 1]`` (patient ``p``'s cells are rows ``offsets[p]:offsets[p + 1]``), with the
patient ids, types and both keys in its metadata. The fingerprint hashes the model's tensors
(:func:`model_fingerprint`), so any change of weights embeds again; the cohort key hashes the
patient ids, the cell paths and the types. A file whose metadata do not match is embedded
again and replaced (atomically).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
#: the detected class whose types the cells are typed among (``model.reading.types``)
WHITE = "white blood cell"


@dataclass
class CellFeatures:
    """Per patient (in ``patient_ids`` order): ``embeddings[p] [n_p, D]`` and ``probs[p]
    [n_p, C]`` over ``types``; ``fingerprint`` of the model that made them."""

    patient_ids: List[str]
    embeddings: List[torch.Tensor]
    probs: List[torch.Tensor]
    types: List[str]
    fingerprint: str

    def __len__(self) -> int:
        return len(self.patient_ids)

    def subset(self, ids: Sequence[str]) -> "CellFeatures":
        pos = {p: i for i, p in enumerate(self.patient_ids)}
        missing = [p for p in ids if p not in pos]
        if missing:
            raise KeyError(f"cell features: patients {missing[:5]} are not in the cohort")
        idx = [pos[p] for p in ids]
        return CellFeatures([self.patient_ids[i] for i in idx],
                            [self.embeddings[i] for i in idx], [self.probs[i] for i in idx],
                            self.types, self.fingerprint)


def model_fingerprint(model: torch.nn.Module) -> str:
    """sha256 (hex) over the model's tensor names, shapes and values."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def cell_types(model, types: Optional[Sequence[str]] = None) -> List[str]:
    """The candidate types of a white cell: ``types`` when given, else the model's
    ``reading.types["white blood cell"]``, else its checkpoint's classify classes."""
    if types:
        return list(types)
    reading = getattr(getattr(model, "config", None), "reading", None)
    found = list((getattr(reading, "types", None) or {}).get(WHITE) or [])
    if not found:
        found = list((getattr(model, "checkpoint_meta", {}) or {}).get("classes", {})
                     .get("classify") or [])
    if len(found) < 2:
        raise ValueError("the model names no white-cell types (model.reading.types['white "
                         "blood cell'] or the checkpoint's classes.classify); pass types=[...]")
    if "classify" not in getattr(model, "heads", {}):
        raise ValueError("the model has no classify head: cell embeddings come from it")
    return found


@torch.no_grad()
def embed_cells(model, processor, images: Sequence[Any], types: Sequence[str],
                batch_size: int = 64, progress: bool = False, desc: str = "embed cells"
                ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(embeddings [n, D], probs [n, C])`` of single-cell ``images`` (paths, arrays or PIL
    images) typed among ``types``. ``n`` may be 0 (then ``[0, 0]`` tensors)."""
    from unihema.data.io import read_image

    types = list(types)
    prompt = processor.prompt("classify", classes=types)
    device = next(model.parameters()).device
    embs, probs = [], []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(images), desc=desc, unit="cell", file=sys.stderr, leave=False)
    for s in range(0, len(images), batch_size):
        part = images[s:s + batch_size]
        items = [processor.item(read_image(im) if isinstance(im, (str, Path)) else im,
                                "classify", prompt, classes=types, label=0) for im in part]
        batch = processor.collate(items)
        if device.type != "cpu":
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        for pred in model.predict(batch):
            embs.append(pred["embedding"].float().cpu())
            probs.append(pred["probs"].float().cpu())
        if bar is not None:
            bar.update(len(part))
    if bar is not None:
        bar.close()
    if not embs:
        return torch.zeros(0, 0), torch.zeros(0, len(types))
    return torch.stack(embs), torch.stack(probs)


@torch.no_grad()
def text_embeddings(model, texts: Sequence[str], chunk: int = 64) -> torch.Tensor:
    """``[M, D]`` unit-norm embeddings of ``texts`` by the model's own text encoder, in the
    space of the cell embeddings (the classify head's class embeddings)."""
    head = model.head("classify")
    was = model.training
    model.eval()
    try:
        out = [head.class_embeddings(model.text, list(texts[i:i + chunk])).float().cpu()
               for i in range(0, len(texts), chunk)]
    finally:
        model.train(was)
    return torch.cat(out) if out else torch.zeros(0, 0)


def cell_paths(bag, root: Optional[PathLike]) -> List[Path]:
    """The bag's cell image paths, relative ones taken from ``root`` (the cohort folder)."""
    out = []
    for c in bag.cells:
        p = Path(c)
        out.append(p if p.is_absolute() or root is None else Path(root) / p)
    return out


def cohort_key(bags: Sequence[Any], types: Sequence[str]) -> str:
    """sha256 (hex) of the patient ids, their cell paths (as written) and ``types``."""
    h = hashlib.sha256(json.dumps(list(types)).encode())
    for b in bags:
        h.update(json.dumps([b.patient_id, [str(c) for c in b.cells]]).encode())
    return h.hexdigest()


def _load_cache(path: Path, fingerprint: str, key: str) -> Optional[CellFeatures]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
            if meta.get("fingerprint") != fingerprint or meta.get("cohort_key") != key:
                return None
            emb, probs, off = (fh.get_tensor(n) for n in ("embeddings", "probs", "offsets"))
    except Exception as exc:  # a damaged cache is embedded again, not trusted
        logger.warning("%s: unreadable cache (%s); embedding again", path, exc)
        return None
    ids = json.loads(meta["patient_ids"])
    o = off.tolist()
    return CellFeatures(ids, [emb[o[i]:o[i + 1]] for i in range(len(ids))],
                        [probs[o[i]:o[i + 1]] for i in range(len(ids))],
                        json.loads(meta["types"]), fingerprint)


def _save_cache(path: Path, feats: CellFeatures, key: str) -> None:
    from safetensors.torch import save_file

    from unihema.utils import atomic_save

    sizes = [len(e) for e in feats.embeddings]
    tensors = {"embeddings": torch.cat(feats.embeddings).contiguous(),
               "probs": torch.cat(feats.probs).contiguous(),
               "offsets": torch.as_tensor(np.concatenate([[0], np.cumsum(sizes)]),
                                          dtype=torch.int64)}
    meta = {"fingerprint": feats.fingerprint, "cohort_key": key,
            "patient_ids": json.dumps(feats.patient_ids), "types": json.dumps(feats.types)}
    atomic_save(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def extract(model, processor, bags: Sequence[Any], root: Optional[PathLike] = None, *,
            cache_dir: Optional[PathLike] = None, types: Optional[Sequence[str]] = None,
            batch_size: int = 64, progress: bool = True) -> CellFeatures:
    """Cell embeddings and type probabilities of every bag (``PatientBag``: ``patient_id``,
    ``cells``), read from ``cache_dir`` when a matching file is there (module docstring),
    else embedded (a progress bar over all cells) and cached. A bag without cells is an error
    naming it."""
    empty = [b.patient_id for b in bags if not b.cells]
    if empty:
        raise ValueError(f"patients without cells: {empty[:5]}")
    types = cell_types(model, types)
    fp = model_fingerprint(model)
    key = cohort_key(bags, types)
    path = Path(cache_dir) / f"cells-{fp[:12]}-{key[:12]}.safetensors" if cache_dir else None
    if path is not None and path.is_file():
        cached = _load_cache(path, fp, key)
        if cached is not None:
            logger.info("cell embeddings from %s", path)
            return cached
    paths = [p for b in bags for p in cell_paths(b, root)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} cell image(s) missing, e.g. {missing[:3]}")
    emb, probs = embed_cells(model, processor, paths, types, batch_size, progress)
    feats, s = CellFeatures([b.patient_id for b in bags], [], [], types, fp), 0
    for b in bags:
        feats.embeddings.append(emb[s:s + len(b.cells)])
        feats.probs.append(probs[s:s + len(b.cells)])
        s += len(b.cells)
    if path is not None:
        _save_cache(path, feats, key)
        logger.info("cell embeddings cached in %s", path)
    return feats
