"""The classification baseline: a ResNet-18, masked average pool and a linear layer (see
:mod:`unihema.baselines.base` for the contract)."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from unihema.baselines.base import (BASELINES, Specialist, convert_norms,
                                    item_key, load_resnet_weights)

logger = logging.getLogger(__name__)


@BASELINES.register("resnet18_classifier")
class ResNetClassifier(Specialist):
    """torchvision ResNet, random init; average pool over the real pixels only, then linear.

    The pool is weighted by the fraction of real (unpadded) pixels under each feature cell, so a
    crop's prediction does not depend on the sizes of the other crops in its batch.

    Args:
        classes, image_size, norm, backbone_weights: as :class:`FCOSDetector`.
        backbone: torchvision ResNet name (``resnet18``, ``resnet34``, ``resnet50``).
    """

    kind = "classifier"
    arch = "resnet18_classifier"
    task = "classify"

    def __init__(self, *, classes: Sequence[str], image_size: int, backbone: str = "resnet18",
                 norm: str = "batch", backbone_weights: str = "") -> None:
        super().__init__(classes=classes, image_size=image_size, norm=norm, backbone=backbone)
        import torchvision

        if backbone not in ("resnet18", "resnet34", "resnet50", "resnet101"):
            raise ValueError(f"backbone must be resnet18/34/50/101, got '{backbone}'")
        net = getattr(torchvision.models, backbone)(weights=None)
        if backbone_weights:
            load_resnet_weights(net, backbone_weights)
        net.fc = nn.Linear(net.fc.in_features, len(self.classes))
        self.net = convert_norms(net, norm)

    def logits(self, images: torch.Tensor, pixel_mask: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` images in [0, 1] and ``[B, H, W]`` mask -> ``[B, C]`` logits."""
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(self.normalize(images)))))
        x = n.layer4(n.layer3(n.layer2(n.layer1(x))))
        w = F.adaptive_avg_pool2d(pixel_mask[:, None].float(), x.shape[-2:])
        pooled = (x * w).sum((2, 3)) / w.sum((2, 3)).clamp_min(1e-6)
        return n.fc(pooled)

    def _prompted_logits(self, batch: Mapping[str, Any]) -> Tuple[torch.Tensor, List]:
        logits = self.logits(batch["images"], batch["pixel_mask"])
        owns = [self.own_indices(c, item_key(batch, i)) for i, c in enumerate(batch["classes"])]
        allowed = torch.zeros_like(logits, dtype=torch.bool)
        for i, own in enumerate(owns):
            allowed[i, own.to(logits.device)] = True
        return logits.masked_fill(~allowed, float("-inf")), owns

    def loss(self, batch: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """``loss_classify_ce``: cross-entropy over each item's prompted classes."""
        self._check(batch)
        logits, owns = self._prompted_logits(batch)
        target = torch.stack([own[int(y)] for own, y in zip(owns, batch["labels"])])
        return {"loss_classify_ce": F.cross_entropy(logits, target.to(logits.device))}

    def _predict(self, batch: Mapping[str, Any]) -> List[Dict[str, Any]]:
        logits, owns = self._prompted_logits(batch)
        probs = logits.softmax(-1).cpu()
        out = []
        for i, own in enumerate(owns):
            p = probs[i, own]
            out.append({"probs": p, "label": int(p.argmax())})
        return out
