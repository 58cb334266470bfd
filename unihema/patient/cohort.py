"""A cohort with a model: cell features, findings text embeddings, the protocol, an encoder.

The steps the ``unihema patient`` commands share:

* :func:`cohort_features`: the cohort's bags and their cell features (cached, see
  :mod:`unihema.patient.features`);
* :func:`text_table`: every findings text of the cohort and every finding of its vocabulary
  embedded by the model's own text encoder;
* :func:`run_protocol`: the protocol (:mod:`unihema.patient.protocol`) on a cohort folder,
  its folds written to (and reused from) ``folds.json``, the table written as markdown + JSON;
* :func:`train_encoder`: one encoder on the whole cohort, with what it was trained on in its
  ``meta``;
* :func:`reference`: a reference cohort's patient embeddings under an encoder;
  :func:`nearest`: the reference patients nearest a query embedding (cosine similarity).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from unihema.patient.encoder import EncoderConfig, PatientEncoder
from unihema.patient.features import CellFeatures, extract, model_fingerprint, \
    text_embeddings
from unihema.patient.protocol import diagnoses_of, evaluate, findings_vocabulary, \
    write_results

PathLike = Union[str, Path]


def cohort_features(model, processor, cohort: PathLike, *, cache_dir: Optional[PathLike] = None,
                    progress: bool = True, batch_size: int = 64
                    ) -> Tuple[List[Any], CellFeatures]:
    """The bags of ``cohort`` (a folder with ``cohort.jsonl`` or the file) and their cell
    features; the cache defaults to ``<cohort folder>/cache``."""
    from unihema.data.patients import load_cohort

    path = Path(cohort)
    root = path if path.is_dir() else path.parent
    bags = load_cohort(path)
    if not bags:
        raise ValueError(f"{path}: the cohort has no patients")
    feats = extract(model, processor, bags, root,
                    cache_dir=cache_dir if cache_dir is not None else root / "cache",
                    progress=progress, batch_size=batch_size)
    return bags, feats


def text_table(model, bags: Sequence[Any]) -> Dict[str, torch.Tensor]:
    """findings text -> ``[E]`` embedding (the model's text encoder) for every bag's
    ``findings_text()`` and every finding of the cohort's vocabulary."""
    texts = sorted({b.findings_text() for b in bags} | set(findings_vocabulary(bags)))
    emb = text_embeddings(model, texts)
    return {t: emb[i] for i, t in enumerate(texts)}


def run_protocol(model, processor, cohort: PathLike, out: PathLike, *, k: int = 5,
                 seed: int = 0, folds_file: Optional[PathLike] = None,
                 cache_dir: Optional[PathLike] = None, config: Optional[EncoderConfig] = None,
                 progress: bool = True) -> Dict[str, Any]:
    """The protocol on a cohort folder: folds from ``folds_file`` (default
    ``<cohort>/folds.json``; drawn and written when absent, else read and checked), cell
    features, the scores; ``patient_eval.json`` / ``.md`` written into ``out``. The result
    holds ``wall_seconds`` (everything) and ``embed_seconds`` (the cell embeddings)."""
    from unihema.data.patients import FOLDS_FILE, patient_folds

    t0 = time.perf_counter()
    path = Path(cohort)
    root = path if path.is_dir() else path.parent
    bags, feats = cohort_features(model, processor, cohort, cache_dir=cache_dir,
                                  progress=progress)
    t_embed = time.perf_counter() - t0
    folds = patient_folds(bags, k, seed, Path(folds_file) if folds_file else root / FOLDS_FILE)
    result = evaluate(feats, bags, folds, text_table=text_table(model, bags), config=config)
    result.update(cohort=str(root), folds_file=str(folds_file or root / FOLDS_FILE),
                  cell_types=feats.types, cell_model=feats.fingerprint[:12],
                  embed_seconds=round(t_embed, 2),
                  wall_seconds=round(time.perf_counter() - t0, 2),
                  encoder_config=(config or EncoderConfig()).__dict__)
    write_results(result, Path(out))
    return result


def train_encoder(model, bags: Sequence[Any], feats: CellFeatures,
                  config: Optional[EncoderConfig] = None) -> PatientEncoder:
    """An encoder trained on every bag (diagnosis + findings alignment), its ``meta`` naming
    the cell model (``cell_model``: fingerprint), the cell ``types`` and the ``findings_vocab``."""
    from unihema.patient.train import fit_encoder

    diagnoses = diagnoses_of(bags)
    table = text_table(model, bags)
    texts = [b.findings_text() for b in bags]
    uniq = sorted(set(texts))
    feats = feats.subset([b.patient_id for b in bags])
    return fit_encoder(feats.embeddings, [diagnoses.index(b.labels[0]) for b in bags],
                       diagnoses, config,
                       text_embeddings=torch.stack([table[t] for t in uniq]),
                       text_ids=[uniq.index(t) for t in texts],
                       meta={"cell_model": feats.fingerprint, "types": feats.types,
                             "findings_vocab": findings_vocabulary(bags)})


def check_cell_model(encoder: PatientEncoder, model) -> Optional[str]:
    """A warning when ``model`` is not the model the encoder's cells were embedded with."""
    want = encoder.meta.get("cell_model")
    if want and want != model_fingerprint(model):
        return (f"the patient encoder was trained on cell embeddings of another model "
                f"(fingerprint {want[:12]}); its outputs are not comparable")
    return None


@torch.no_grad()
def reference(encoder: PatientEncoder, feats: CellFeatures) -> torch.Tensor:
    """``[P, E]`` patient embeddings of a reference cohort's features."""
    return encoder.encode(feats.embeddings).embedding


def nearest(query: torch.Tensor, ref: torch.Tensor, bags: Sequence[Any], k: int = 5,
            exclude: Optional[str] = None) -> List[Dict[str, Any]]:
    """The ``k`` reference patients (``bags``, rows of ``ref [P, E]``) nearest ``query [E]``
    by cosine similarity, ``exclude`` (a patient id) left out: ``[{"patient_id",
    "diagnosis", "findings", "similarity"}]``."""
    sims = ref @ query
    order = [int(i) for i in sims.argsort(descending=True)
             if bags[int(i)].patient_id != exclude][:k]
    return [{"patient_id": bags[i].patient_id, "diagnosis": bags[i].diagnosis,
             "findings": list(bags[i].findings), "similarity": round(float(sims[i]), 4)}
            for i in order]
