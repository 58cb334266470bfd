"""The segmentation baseline: a U-Net with a ResNet-18 encoder (see
:mod:`unihema.baselines.base` for the contract)."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Sequence

import torch
import torch.nn.functional as F

from unihema.baselines.base import (BASELINES, Specialist, convert_norms,
                                    item_key, load_resnet_weights)

logger = logging.getLogger(__name__)


@BASELINES.register("unet_resnet18")
class UNetSegmenter(Specialist):
    """segmentation_models_pytorch U-Net, random init; cross-entropy + Dice over its classes.

    Output channel k = ``classes[k]`` ("background" first by convention). Padding (mask -1) is
    ignored by both losses.

    Args:
        classes, image_size, norm, backbone_weights: as :class:`FCOSDetector`.
        encoder: smp encoder name (``resnet18``, ``resnet34``, ...).
    """

    kind = "segmenter"
    arch = "unet_resnet18"
    task = "segment"

    def __init__(self, *, classes: Sequence[str], image_size: int, encoder: str = "resnet18",
                 norm: str = "batch", backbone_weights: str = "") -> None:
        super().__init__(classes=classes, image_size=image_size, norm=norm, encoder=encoder)
        import segmentation_models_pytorch as smp

        self.net = smp.Unet(encoder_name=encoder, encoder_weights=None,
                            classes=len(self.classes))
        if backbone_weights:
            load_resnet_weights(self.net.encoder, backbone_weights)
        convert_norms(self.net, norm)
        self.dice = smp.losses.DiceLoss(mode="multiclass", ignore_index=-1)

    def _targets(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """``batch["masks"]`` (indices into each item's prompted classes) -> own indices."""
        masks = batch["masks"]
        out = torch.full_like(masks, -1)
        for i, names in enumerate(batch["classes"]):
            own = self.own_indices(names, item_key(batch, i)).to(masks.device)
            valid = masks[i] >= 0
            out[i][valid] = own[masks[i][valid]]
        return out

    def loss(self, batch: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """``loss_segment_ce`` (mean over labelled pixels) and ``loss_segment_dice``."""
        self._check(batch)
        logits = self.net(self.normalize(batch["images"]))
        target = self._targets(batch)
        if not (target >= 0).any():  # nothing labelled: a zero that still reaches the graph
            zero = logits.sum() * 0.0
            return {"loss_segment_ce": zero, "loss_segment_dice": zero}
        return {"loss_segment_ce": F.cross_entropy(logits, target, ignore_index=-1),
                "loss_segment_dice": self.dice(logits, target)}

    def _predict(self, batch: Mapping[str, Any]) -> List[Dict[str, Any]]:
        logits = self.net(self.normalize(batch["images"])).cpu()
        out = []
        for i, names in enumerate(batch["classes"]):
            own = self.own_indices(names, item_key(batch, i))
            out.append({"mask": logits[i, own].argmax(0)})
        return out
