"""Training objectives beside each task's own loss, composed by the trainer from the config.

The model's forward computes a batch's own head loss; the objectives here add terms from the
same pass (``model(batch, objectives=...)``, :class:`~unihema.modeling.types.Objective`), so
that DDP and DeepSpeed still see one forward per micro-batch:

* :class:`CrossSupervision` (``data.cross_supervision``): a batch whose items carry another
  head's targets (``batch["cross_tasks"]``, set by the mapper) also trains that head, from the
  same fused representation (:meth:`TaskHead.cross_loss`), under that head's loss names
  (``loss_classify_ce`` on a morphology batch).
* :class:`TrunkSupervision` (``data.trunk_items``): the sampler draws ``k`` items more at the
  end of each batch of the task; they go through the trunk only, and their pooled trunk
  features (:meth:`UniHema.trunk_view`) are scored by the batch's head and the
  cross-supervised ones, as ``loss_<task>_trunk_<term>``: deep supervision of the trunk at a
  fraction of a full item's cost.

:func:`build_objectives` turns a config into the list the trainer passes.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

import torch

from unihema.config.schema import Config
from unihema.modeling.types import Batch, ForwardPass, Objective


def cross_tasks(model: Any, batch: Mapping[str, Any]) -> List[str]:
    """The other heads whose targets the batch's items carry (``cross_tasks``), first-seen
    order.

    Raises:
        KeyError: the model has no head for one of them.
    """
    others = list(dict.fromkeys(t for ts in batch.get("cross_tasks") or [] for t in ts))
    for other in others:
        if other not in model.heads:
            raise KeyError(f"a {batch['task']} batch carries '{other}' targets "
                           f"(data.cross_supervision) but this model has no '{other}' "
                           f"head; it has {list(model.heads)}")
    return others


class CrossSupervision:
    """The other cell heads' terms on a batch that carries their targets
    (``data.cross_supervision``); items without a target are skipped by the head."""

    def trunk_items(self, batch: Batch) -> int:
        return 0

    def __call__(self, model: Any, done: ForwardPass) -> Dict[str, torch.Tensor]:
        losses: Dict[str, torch.Tensor] = {}
        for other in cross_tasks(model, done.main):
            for name, value in model.heads[other].cross_loss(done.fused, done.main).items():
                if name in losses:
                    raise KeyError(f"cross-supervision by '{other}' repeats loss '{name}' of "
                                   f"the {done.main.task} batch")
                losses[name] = value
        return losses


class TrunkSupervision:
    """Deep supervision of the trunk (``data.trunk_items``).

    Args:
        items: ``{task: k}``: every batch of ``task`` ends with ``k`` trunk-only items
            (:func:`unihema.engine.data.check_trunk_items`, drawn by the sampler).
    """

    def __init__(self, items: Mapping[str, int]) -> None:
        self.items = {task: int(k) for task, k in items.items() if k}

    def trunk_items(self, batch: Batch) -> int:
        return self.items.get(batch.task, 0)

    def __call__(self, model: Any, done: ForwardPass) -> Dict[str, torch.Tensor]:
        k = self.trunk_items(done.batch)
        if not k:
            return {}
        tail = done.batch.slice(done.batch.size - k, done.batch.size)
        view = model.trunk_view(done.visual["trunk_pooled"])
        losses: Dict[str, torch.Tensor] = {}
        for task in [tail.task, *cross_tasks(model, tail)]:
            prefix = f"loss_{task}_"
            for name, value in model.heads[task].cross_loss(view, tail).items():
                losses[name.replace(prefix, prefix + "trunk_", 1)] = value
        return losses


def build_objectives(cfg: Config, trunk_items: Mapping[str, int]) -> List[Objective]:
    """The objectives of a run: cross-supervision when ``data.cross_supervision`` names a
    pair, deep supervision of the trunk when ``trunk_items`` (the checked
    ``data.trunk_items``) has a task. Cross-supervision comes first (its terms come first in
    the loss dict, as they always did)."""
    out: List[Objective] = []
    if any(cfg.data.cross_supervision.values()):
        out.append(CrossSupervision())
    if trunk_items:
        out.append(TrunkSupervision(trunk_items))
    return out


__all__ = ["CrossSupervision", "TrunkSupervision", "build_objectives", "cross_tasks"]
