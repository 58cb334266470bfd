"""Task heads: the registry and the contract every head follows.

A head turns the shared fused representation into one task's outputs. It is registered under
its task key and built from the model config::

    @HEADS.register("detect")
    class DetectHead(TaskHead):
        @classmethod
        def from_config(cls, cfg): ...
        def forward(self, fused, batch): ...          # Fused, Batch -> HeadOutput
        def loss(self, outputs, batch): ...           # -> {"loss_detect_cls": t, ...}
        def postprocess(self, outputs, batch): ...    # -> list of per-image results

The types are :mod:`unihema.modeling.types`: ``fused`` is the shared :class:`Fused`
representation (maps, joint embedding, queries, class-name embeddings and the T5 decoder bound
to the batch's memory, ``fused.decoder``), ``batch`` a :class:`Batch` (or any mapping of
collate's keys), ``outputs`` the head's :class:`HeadOutput`. Names are stable: targets are the
collate keys, loss terms ``loss_<task>_<term>``; every loss term needs a weight in
``train.loss_weights`` (:func:`weigh_losses` enforces it).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

import torch
from torch import nn

from unihema.modeling.types import Fused, HeadOutput
from unihema.registry import Registry

HEADS: Registry[type] = Registry(
    "task head",
    signature="cls.from_config(cfg) -> TaskHead; forward(fused, batch) -> HeadOutput; "
    "loss(outputs, batch) -> dict['loss_<task>_<term>', Tensor]; "
    "postprocess(outputs, batch) -> list[dict]",
)


class TaskHead(nn.Module):
    """Base class of task heads; see the module docstring for the contract."""

    task: str = ""
    #: whether the head reads the fused maps (``"P2".."P5"``, ``"C1"``). A head that reads
    #: only ``joint``, ``queries``, ``text`` or the decoder memory sets False, and the model
    #: then skips the stride-4 map and the top-down pass for its batches (same outputs,
    #: less compute).
    dense: bool = True

    @classmethod
    def from_config(cls, cfg: Any) -> "TaskHead":
        raise NotImplementedError(f"{cls.__name__} must implement from_config(cfg)")

    def forward(self, fused: Fused, batch: Mapping[str, Any]) -> HeadOutput:
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def loss(self, outputs: HeadOutput, batch: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement loss")

    def postprocess(self, outputs: HeadOutput, batch: Mapping[str, Any]) -> List[Dict]:
        raise NotImplementedError(f"{type(self).__name__} must implement postprocess")

    def cross_loss(self, fused: Fused, batch: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """This head's loss terms on a batch of another task that carries its targets
        (``data.cross_supervision``), or on pooled trunk features (``data.trunk_items``), from
        ``fused.joint`` alone; items without a target are skipped, ``{}`` when none has one.
        Heads over the global embedding override this (:mod:`unihema.engine.objectives`)."""
        raise NotImplementedError(f"{type(self).__name__} does not support cross-supervision")


def batch_class_names(batch: Mapping[str, Any]) -> List[str]:
    """The union of the items' class lists (``batch["classes"]``), in first-seen order: the
    names a head embeds once per batch."""
    names: Dict[str, None] = {}
    for item_classes in batch["classes"]:
        for n in item_classes:
            names.setdefault(n)
    return list(names)


def weigh_losses(
    losses: Mapping[str, torch.Tensor], weights: Mapping[str, float]
) -> Dict[str, torch.Tensor]:
    """Multiply each ``loss_<task>_<term>`` by its configured weight.

    Raises:
        KeyError: a loss term has no weight (it would otherwise be silently dropped or
            silently weighted 1), or a name does not follow ``loss_<task>_<term>``.
    """
    out = {}
    missing = []
    for name, value in losses.items():
        if not name.startswith("loss_") or name.count("_") < 2:
            raise KeyError(f"loss name '{name}' must follow loss_<task>_<term>")
        if name not in weights:
            missing.append(name)
            continue
        out[name] = value * float(weights[name])
    if missing:
        raise KeyError(
            f"no weight configured for {missing}; add them to train.loss_weights "
            f"(configured: {sorted(weights) or 'none'})"
        )
    return out
