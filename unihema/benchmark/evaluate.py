"""Scoring on configured data: task splits built by the training data path, scored by the one
inference loop (:func:`unihema.evaluation.runner.evaluate_split`).

    results = evaluate_entries(predictor, cfg, cfg.data.test)    # {task: {dataset: metrics}}
    results = evaluate_baseline(model, cfg, cfg.data.test)       # a specialist, at its size

``predictor`` is anything with ``predict(batch)``: a :class:`~unihema.benchmark.LoadedModel`,
a :class:`~unihema.modeling.reading.ReadingCascade` around a unihema model, a specialist. A
bare :class:`~unihema.modeling.model.UniHema` is wrapped in a cascade reading with its own
heads, so its text tasks answer from one cached reading per image.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Dict, Optional, Sequence

from unihema.config.schema import Config, DatasetEntry

logger = logging.getLogger(__name__)


def predictor_of(model: Any) -> Any:
    """``model``, or a :class:`~unihema.modeling.reading.ReadingCascade` around it when it is
    a unihema model whose text tasks read (one cache for the whole evaluation)."""
    from unihema.modeling.model import UniHema
    from unihema.modeling.reading import ReadingCascade

    if isinstance(model, UniHema) and model.config.reading.tasks:
        return ReadingCascade(model)
    return model


def entry_split(entry: Any, image_size: int, upscale: bool, crop_size: int = 0):
    """The evaluation task split of a suite entry (:class:`unihema.evaluation.suite.
    SuiteEntry`) at the model's image size, upscaling and crop size; with an ``evaluator``
    that prepares samples (``prepare_samples``), its samples as that evaluator scores them."""
    from unihema.engine.data import build_task_splits

    cfg = Config()
    cfg.data.image_size = image_size
    cfg.data.upscale = upscale
    cfg.data.crop_size = crop_size
    de = DatasetEntry(name=entry.dataset, root=entry.root, split=entry.split, spec=entry.spec,
                      tasks=[entry.task], classes=dict(entry.classes),
                      candidates={entry.task: list(entry.candidates)} if entry.candidates else {},
                      derive_text=entry.derive_text, where=dict(entry.where))
    splits = build_task_splits([de], cfg, train=False, tasks=[entry.task])
    if len(splits) != 1:
        raise ValueError(f"{entry.label}: expected one task split, got {len(splits)}")
    return _prepared(splits[0], entry, cfg)


def _prepared(split: Any, entry: Any, cfg: Config) -> Any:
    """``split``, its samples re-prompted when the entry's evaluator prepares them (the
    ``open_set`` evaluator prompts every cell with the trained classes)."""
    from unihema.evaluation.suite import evaluator_class

    cls = evaluator_class(entry.task, getattr(entry, "evaluator", ""))
    if not hasattr(cls, "prepare_samples"):
        return split
    from unihema.engine.data import TaskSplit
    from unihema.pipeline.mapper import DatasetMapper, TaskDataset

    samples = cls(**entry.options).prepare_samples(split.samples)
    dataset = TaskDataset(samples, split.task, DatasetMapper.from_config(cfg, train=False),
                          train=False)
    return TaskSplit(split.entry, split.task, samples, dataset)


def evaluate_entries(
    model: Any,
    cfg: Config,
    entries: Sequence[DatasetEntry],
    *,
    tasks: Optional[Sequence[str]] = None,
    limit: Optional[int] = None,
    shuffle_images: bool = False,
    options: Optional[Dict[str, Dict[str, Any]]] = None,
    batch_size: Optional[int] = None,
    progress: bool = True,
) -> Dict[str, Dict[str, Dict[str, float]]]:
    """``{task: {dataset: metrics}}`` over every (entry, task) of ``tasks`` (default: the
    model's ``config.tasks``); batches of ``batch_size`` (default twice ``data.batch_size``)."""
    from unihema.engine.data import build_task_splits
    from unihema.evaluation.runner import evaluate_split

    predictor = predictor_of(model)
    results: Dict[str, Dict[str, Dict[str, float]]] = {}
    for split in build_task_splits(entries, cfg, train=False, tasks=tasks or model.config.tasks):
        metrics = evaluate_split(predictor, split,
                                 batch_size=batch_size or cfg.data.batch_size * 2, limit=limit,
                                 shuffle_images=shuffle_images,
                                 evaluator_options=(options or {}).get(split.task),
                                 progress=progress)
        results.setdefault(split.task, {})[split.entry.name] = metrics
    return results


def evaluate_baseline(
    model: Any,
    cfg: Config,
    entries: Sequence[DatasetEntry],
    *,
    limit: Optional[int] = None,
    progress: bool = True,
) -> Dict[str, Dict[str, Dict[str, float]]]:
    """``{task: {dataset: metrics}}`` of a specialist ``model`` on its task of ``entries``.

    Runs :func:`evaluate_entries` (same evaluators and batching as the unified model) at the
    model's own image size; a config with another ``data.image_size`` is overridden with a
    warning.
    """
    if cfg.data.image_size != model.image_size:
        logger.warning("evaluating %s at its training image size %d, not data.image_size=%d",
                       model.arch, model.image_size, cfg.data.image_size)
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data,
                                                                image_size=model.image_size))
    entries = [e for e in entries if not e.tasks or model.task in e.tasks]
    if not entries:
        raise ValueError(f"no evaluation entry has task '{model.task}'")
    results = evaluate_entries(model, cfg, entries, tasks=[model.task], limit=limit,
                               progress=progress)
    if not results:
        raise ValueError(f"none of {[f'{e.name}/{e.split}' for e in entries]} supervises "
                         f"'{model.task}'")
    return results


__all__ = ["entry_split", "evaluate_baseline", "evaluate_entries", "predictor_of"]
