"""Running a model over configured cells to get :class:`~unihema.trust.fitting.Cells`.

With :mod:`unihema.benchmark.trust` it is the part of per-cell trust that loads models and
builds task splits; :mod:`unihema.trust` itself works on tensors alone.

Every cell is prompted with the **trained** classes (the trust state's), whatever its true
type: in use a cell of an untrained type comes with the same prompt as any other, so its
logits and embedding must be measured that way. A config entry's cells are the classify
samples its task split holds (after ``classes`` and ``candidates``: listing every white-cell
type keeps the held-out types and leaves out red cells); each sample is re-prompted with the
trained classes and its true type kept aside. Batches go through the one inference loop
(:func:`unihema.evaluation.runner.run_evaluation`), predictions through the loaded model
(:func:`unihema.benchmark.models.load_model`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from torch.utils.data import DataLoader

from unihema.config.schema import Config, DatasetEntry
from unihema.trust.fitting import Cells

logger = logging.getLogger(__name__)


def entry_label(entry: DatasetEntry, entries: Sequence[DatasetEntry] = ()) -> str:
    """``name/split``, with the root's last folder when another of ``entries`` shares it
    (``synthetic_smear/test@synth_domain05``)."""
    base = f"{entry.name}/{entry.split}"
    where = ",".join(f"{k}={v}" for k, v in sorted(entry.where.items()))
    if where:
        base += f"[{where}]"
    twins = [e for e in entries if f"{e.name}/{e.split}" == f"{entry.name}/{entry.split}"
             and e.where == entry.where]
    if len(twins) > 1:
        from pathlib import Path

        base += f"@{Path(entry.root).name}"
    return base


def known_classes(entries: Sequence[DatasetEntry]) -> List[str]:
    """The classify candidates of ``entries`` (the first entry that lists them; all that
    list them must agree), less the exclusions (``-name``): the types a trust state is fitted
    over.

    Raises:
        ValueError: no entry lists ``candidates.classify``, or two lists differ.
    """
    lists = [[c for c in e.candidates["classify"] if not c.startswith("-")]
             for e in entries if e.candidates.get("classify")]
    if not lists:
        raise ValueError("no data entry lists candidates.classify: the trust state needs the "
                         "trained cell types (give data.val entries with "
                         "candidates: {classify: [...]})")
    for other in lists[1:]:
        if other != lists[0]:
            raise ValueError(f"data entries list different candidates.classify: {lists[0]} "
                             f"and {other}")
    return lists[0]


def model_config(cfg: Config, loaded: Any) -> Config:
    """``cfg`` with the image size, upscaling and crop size the loaded model expects."""
    data = dataclasses.replace(
        cfg.data, image_size=loaded.image_size or cfg.data.image_size,
        upscale=loaded.upscale, crop_size=loaded.crop_size)
    return dataclasses.replace(cfg, data=data)


def collect_cells(loaded: Any, cfg: Config, entry: DatasetEntry, classes: Sequence[str], *,
                  limit: Optional[int] = None, batch_size: int = 64,
                  source: str = "", progress: bool = False) -> Cells:
    """:class:`Cells` of one config entry's classify split, prompted with ``classes``
    (``limit``: at most that many cells, evenly spread)."""
    from unihema.engine.data import build_task_splits
    from unihema.evaluation.runner import limited, run_evaluation
    from unihema.pipeline.collate import collate
    from unihema.pipeline.mapper import DatasetMapper, TaskDataset

    cfg = model_config(cfg, loaded)
    splits = build_task_splits([entry], cfg, train=False, tasks=["classify"])
    if not splits:
        raise ValueError(f"{entry.name}/{entry.split}: no classify samples")
    samples = splits[0].samples
    classes = list(classes)
    names = [s.label for s in samples]
    # the same prompt for every cell: the trained classes; a stand-in label for the others
    prompted = [dataclasses.replace(s, label=s.label if s.label in classes else classes[0],
                                    label_set=classes) for s in samples]
    dataset = TaskDataset(prompted, "classify", DatasetMapper.from_config(cfg, train=False),
                          train=False)
    if len(dataset) != len(samples):
        raise ValueError(f"{entry.name}/{entry.split}: {len(dataset)} classify items from "
                         f"{len(samples)} samples (expected one item per cell crop)")
    index = list(range(len(dataset)))
    view = limited(dataset, limit)
    if view is not dataset:
        index = list(view.indices)  # type: ignore[attr-defined]
    logits: List[torch.Tensor] = []
    embeddings: List[torch.Tensor] = []

    def keep(batch, predictions, start) -> None:
        for p in predictions:
            logits.append(p["logits"].float())
            embeddings.append(p["embedding"].float())

    loader = DataLoader(view, batch_size=batch_size, shuffle=False, collate_fn=collate)
    run_evaluation(loaded, loader, [], [keep], progress=progress,
                   desc=f"trust {source or entry.split}")
    if not logits:
        raise ValueError(f"{entry.name}/{entry.split}: no cells")
    return Cells(torch.stack(logits), torch.stack(embeddings), [names[i] for i in index],
                 classes, source or entry_label(entry))


def name_embedder(model: Any) -> Callable[[Sequence[str]], torch.Tensor]:
    """``names -> [K, embed_dim]`` unit-norm class-name embeddings of a unihema model (the
    classify head's text side; any name)."""
    head = model.head("classify")

    @torch.no_grad()
    def embed(names: Sequence[str]) -> torch.Tensor:
        was = model.training
        model.eval()
        try:
            return head.class_embeddings(model.text, list(names)).detach().float().cpu()
        finally:
            model.train(was)

    return embed


def logit_scale(model: Any) -> float:
    """The classify head's learned similarity scale (its logits are scale x cosine)."""
    return float(model.head("classify").log_scale.detach().exp())


def fingerprint(loaded: Any) -> Dict[str, Any]:
    """What identifies the model: its folder and the sha256 of its weights file."""
    from pathlib import Path

    from unihema.utils import sha256_file

    folder = Path(loaded.path)
    folder = folder / "model" if (folder / "model").is_dir() else folder
    weights = folder / "model.safetensors"
    return {"model": str(folder), "model_sha256": sha256_file(weights) if weights.is_file()
            else None}


__all__ = ["collect_cells", "entry_label", "fingerprint", "known_classes", "logit_scale",
           "model_config", "name_embedder"]
