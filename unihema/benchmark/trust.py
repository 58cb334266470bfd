"""``unihema trust fit`` and ``unihema trust eval``: a loaded model over a config's data.

    state = fit_trust("runs/trust/synthetic/model", cfg)        # writes trust.json + tensors
    results = evaluate_trust("runs/trust/synthetic/model", cfg, out="runs/trust/eval")

Fitting reads the config's ``data.val`` entries (the calibration cells; their
``candidates.classify`` are the trained types) and ``data.train`` (the training cells the
embedding scorers compare with); evaluation reads ``data.test``, where cells of other types
are the unknown ones; :mod:`unihema.benchmark.trust_cells` collects the cells.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from unihema.config.schema import Config, DatasetEntry
from unihema.benchmark.trust_cells import (collect_cells, entry_label, fingerprint, known_classes,
                                   logit_scale, name_embedder)
from unihema.trust.fitting import Cells, evaluate_state, fit_state
from unihema.trust.state import TrustState
from unihema.utils import atomic_write_text, jsonable, slug

logger = logging.getLogger(__name__)

#: the data section a split name reads
SPLITS = ("train", "val", "test")


def _entries(cfg: Config, split: str) -> List[DatasetEntry]:
    if split not in SPLITS:
        raise ValueError(f"--split must be one of {list(SPLITS)}, got '{split}'")
    entries = list(getattr(cfg.data, split))
    if not entries:
        raise ValueError(f"the config has no data.{split} entries")
    return entries


def _load(model: Union[str, Path, Any]) -> Any:
    from unihema.benchmark.models import load_model

    loaded = load_model(model) if isinstance(model, (str, Path)) else model
    if loaded.kind != "unihema" or "classify" not in loaded.tasks:
        raise ValueError(f"{loaded.path}: trust needs a unihema model with a classify head "
                         f"(this is a {loaded.kind} with tasks {loaded.tasks})")
    return loaded


def model_folder(loaded: Any) -> Path:
    """The checkpoint folder of a loaded model (``<run>/model`` for a run folder)."""
    path = Path(loaded.path)
    return path / "model" if (path / "model").is_dir() else path


def collect_split(loaded: Any, cfg: Config, split: str, classes: Sequence[str], *,
                  limit: Optional[int] = None, progress: bool = False) -> List[Cells]:
    """:class:`Cells` of every entry of ``data.<split>``."""
    entries = _entries(cfg, split)
    return [collect_cells(loaded, cfg, e, classes, limit=limit, progress=progress,
                          source=entry_label(e, entries)) for e in entries]


def merge(cells: Sequence[Cells]) -> Cells:
    """One :class:`Cells` of several (same classes)."""
    import torch

    return Cells(torch.cat([c.logits for c in cells]), torch.cat([c.embeddings for c in cells]),
                 [n for c in cells for n in c.names], list(cells[0].classes),
                 " + ".join(c.source for c in cells))


def fit_trust(model: Union[str, Path, Any], cfg: Config, *, split: str = "val",
              method: str = "names", params: Optional[Dict[str, Dict[str, Any]]] = None,
              target_accuracy: float = 0.98, limit: Optional[int] = None,
              train_limit: Optional[int] = 3000, save: bool = True,
              progress: bool = False) -> TrustState:
    """Fit a :class:`TrustState` on ``data.<split>`` (training cells from ``data.train``) and,
    with ``save``, write it into the model folder."""
    loaded = _load(model)
    t0 = time.time()
    classes = known_classes(_entries(cfg, split))
    val = merge(collect_split(loaded, cfg, split, classes, limit=limit, progress=progress))
    train = (merge(collect_split(loaded, cfg, "train", classes, limit=train_limit,
                                 progress=progress)) if cfg.data.train else None)
    net = loaded.model
    state = fit_state(val, train, method=method, params=params,
                      embed_names=name_embedder(net), logit_scale=logit_scale(net),
                      target_accuracy=target_accuracy,
                      fitted_on=dict(fingerprint(loaded), split=split, val=val.source,
                                     train=train.source if train else None,
                                     seconds=round(time.time() - t0, 1)))
    if save:
        path = state.save(model_folder(loaded))
        logger.info("wrote %s (fitted on %d cells of %s)", path, state.fitted_on["val_cells"],
                    val.source)
    return state


def evaluate_trust(model: Union[str, Path, Any], cfg: Config, *, split: str = "test",
                   state: Optional[TrustState] = None, limit: Optional[int] = None,
                   out: Optional[Union[str, Path]] = None, plots: bool = True,
                   progress: bool = False) -> Dict[str, Any]:
    """Every trust metric on each entry of ``data.<split>``: ``{"meta": ..., label: metrics}``
    (:func:`unihema.trust.fitting.evaluate_state`); with ``out``, ``trust_results.json``,
    ``trust_results.md`` and a reliability diagram per entry."""
    loaded = _load(model)
    state = state or TrustState.load(model_folder(loaded))
    if state is None:
        raise FileNotFoundError(f"{model_folder(loaded)} holds no trust.json: run "
                                f"`unihema trust fit` first")
    results: Dict[str, Any] = {"meta": {"model": str(model_folder(loaded)),
                                        "fitted_on": state.fitted_on,
                                        "method": state.unknown_method,
                                        "classes": state.classes}}
    for cells in collect_split(loaded, cfg, split, state.classes, limit=limit,
                               progress=progress):
        results[cells.source] = evaluate_state(state, cells)
    if out is not None:
        write_results(results, Path(out), plots=plots)
    return results


def write_results(results: Dict[str, Any], out: Path, *, plots: bool = True) -> None:
    """``trust_results.json`` (reliability bins included), ``trust_results.md`` and, with
    ``plots``, ``reliability_<entry>.png``."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "trust_results.json",
                      json.dumps(jsonable(results), indent=2) + "\n")
    atomic_write_text(out / "trust_results.md", tables(results))
    if plots:
        from unihema.evaluation.plots import plot_reliability

        for label, r in results.items():
            if label == "meta" or not r["known"]:
                continue
            cal = r["calibration"]
            plot_reliability(cal["reliability"], out / f"reliability_{slug(label)}.png",
                             title=f"{label}: {r['known']} cells of trained types",
                             ece=cal["ece"])


def _f(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def tables(results: Dict[str, Any]) -> str:
    """Markdown tables: calibration, conformal sets, unknown cells, referral."""
    rows = [(k, v) for k, v in results.items() if k != "meta"]
    meta = results.get("meta", {})
    lines = [f"Trust state: {meta.get('method')} unknown scores over {meta.get('classes')}",
             "", "| cells | known | ECE (T=1) | ECE | NLL | Brier | accuracy |",
             "|---|---|---|---|---|---|---|"]
    for k, r in rows:
        c, u = r["calibration"], r["uncalibrated"]
        lines.append(f"| {k} | {r['known']} | {_f(u['ece'])} | {_f(c['ece'])} | {_f(c['nll'])} "
                     f"| {_f(c['brier'])} | {_f(c['accuracy'])} |")
    levels = sorted({lv for _, r in rows for lv in r["conformal"]})
    lines += ["", "| cells | " + " | ".join(f"coverage @{lv} | mean size @{lv}" for lv in levels)
              + " |", "|---|" + "---|---|" * len(levels)]
    for k, r in rows:
        cells = [f"{_f(r['conformal'][lv]['coverage'])} | {_f(r['conformal'][lv]['mean_size'], 2)}"
                 for lv in levels]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += ["", "| cells | unknown | method | AUROC | FPR@95TPR | AUPR | flagged known | "
              "flagged unknown |", "|---|---|---|---|---|---|---|---|"]
    for k, r in rows:
        for m, o in r["open_set"].items():
            lines.append(f"| {k} | {r['unknown']} | {m} | {_f(o['auroc'])} | "
                         f"{_f(o['fpr@95tpr'])} | {_f(o['aupr'])} | "
                         f"{_f(o.get('flagged_known'))} | {_f(o.get('flagged_unknown'))} |")
    lines += ["", "| cells | threshold | coverage (known) | accuracy (known) | coverage (all) | "
              "accuracy (all) | unknown decided |", "|---|---|---|---|---|---|---|"]
    for k, r in rows:
        a, b = r["referral"], r["referral_all"]
        lines.append(f"| {k} | {_f(a['threshold'])} | {_f(a['coverage'])} | {_f(a['accuracy'])} "
                     f"| {_f(b['coverage'])} | {_f(b['accuracy'])} | "
                     f"{_f(b.get('unknown_decided'))} |")
    return "\n".join(lines) + "\n"


__all__ = ["collect_split", "evaluate_trust", "fit_trust", "merge", "model_folder", "tables",
           "write_results"]
