"""Detector baselines: torchvision FCOS and Faster R-CNN over a ResNet-18 FPN (see
:mod:`unihema.baselines.base` for the contract)."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Sequence

import torch
from torch import nn

from unihema.baselines.base import (BASELINES, Specialist, convert_norms, item_key,
                                    load_resnet_weights, valid_size)
from unihema.modeling.backbone import PIXEL_MEAN, PIXEL_STD

logger = logging.getLogger(__name__)


class _TorchvisionDetector(Specialist):
    """A torchvision detector fed the unpadded region of each item, without resizing.

    torchvision's ``GeneralizedRCNNTransform`` normalises (ImageNet mean/std) and would resize
    every image to ``min_size``; its resize is replaced by the identity, so the network sees the
    images at the size the data pipeline made them and boxes stay in batch pixels both ways.
    ``label_offset`` is 1 for models whose class 0 is background (Faster R-CNN), else 0.
    """

    kind = "detector"
    task = "detect"
    label_offset = 0

    def _build(self, net: nn.Module, backbone_weights: str) -> None:
        from torchvision.models.detection.transform import GeneralizedRCNNTransform

        class _NoResize(GeneralizedRCNNTransform):
            def resize(self, image, target=None):
                return image, target

        net.transform = _NoResize(self.image_size, self.image_size, list(PIXEL_MEAN),
                                  list(PIXEL_STD), size_divisible=32)
        if backbone_weights:
            load_resnet_weights(net.backbone.body, backbone_weights)
        self.net = convert_norms(net, self.norm)

    def _inputs(self, batch: Mapping[str, Any], targets: bool):
        images, tgts = [], []
        for i in range(batch["images"].shape[0]):
            h, w = valid_size(batch["pixel_mask"][i])
            images.append(batch["images"][i, :, :h, :w])
            if not targets:
                continue
            own = self.own_indices(batch["classes"][i], item_key(batch, i))
            boxes = batch["boxes"][i].float().reshape(-1, 4).clone()
            box_classes = batch["box_classes"][i].long()
            labels = own.to(box_classes.device)[box_classes] + self.label_offset
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
            # torchvision rejects zero-area boxes (a crop can leave a sliver on the border)
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            tgts.append({"boxes": boxes[keep], "labels": labels.to(boxes.device)[keep]})
        return images, tgts

    def loss(self, batch: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """torchvision's loss terms, as ``loss_detect_<term>`` (unweighted, summed to train)."""
        self._check(batch)
        if not self.training:
            raise RuntimeError(f"{self.arch}.loss() needs training mode (torchvision detectors "
                               f"return detections in eval mode); call .train() first")
        images, targets = self._inputs(batch, targets=True)
        losses = self.net(images, targets)
        return {f"loss_detect_{k.removeprefix('loss_')}": v for k, v in losses.items()}

    def _predict(self, batch: Mapping[str, Any]) -> List[Dict[str, Any]]:
        images, _ = self._inputs(batch, targets=False)
        results = []
        for i, det in enumerate(self.net(images)):
            own = self.own_indices(batch["classes"][i], item_key(batch, i))
            to_prompt = torch.full((len(self.classes),), -1, dtype=torch.long)
            to_prompt[own] = torch.arange(len(own))
            cls = to_prompt[det["labels"].cpu() - self.label_offset]
            keep = cls >= 0
            results.append({"boxes": det["boxes"].cpu()[keep], "scores": det["scores"].cpu()[keep],
                            "classes": cls[keep]})
        return results


@BASELINES.register("fcos_resnet18")
class FCOSDetector(_TorchvisionDetector):
    """torchvision FCOS on a ResNet + FPN (P3-P7, 256 channels), random init.

    Args:
        classes: the class names (output channel k = ``classes[k]``).
        image_size: longer image side it is trained and evaluated at.
        backbone: torchvision ResNet name (``resnet18``, ``resnet34``, ``resnet50``).
        norm: backbone normalisation (:data:`NORMS`); the FCOS head always uses GroupNorm.
        score_thresh: detections below it are dropped (low, for AP).
        nms_thresh: IoU of the per-class NMS.
        detections_per_img: detections kept per image (fields hold up to ~100 cells).
        backbone_weights: local torchvision ResNet state dict to start from ('' = random).
    """

    arch = "fcos_resnet18"

    def __init__(self, *, classes: Sequence[str], image_size: int, backbone: str = "resnet18",
                 norm: str = "group", score_thresh: float = 0.05, nms_thresh: float = 0.6,
                 detections_per_img: int = 300, backbone_weights: str = "") -> None:
        super().__init__(classes=classes, image_size=image_size, norm=norm, backbone=backbone,
                         score_thresh=score_thresh, nms_thresh=nms_thresh,
                         detections_per_img=detections_per_img)
        from torchvision.models.detection import FCOS
        from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
        from torchvision.ops.feature_pyramid_network import LastLevelP6P7

        body = resnet_fpn_backbone(backbone_name=backbone, weights=None, norm_layer=nn.BatchNorm2d,
                                   trainable_layers=5, returned_layers=[2, 3, 4],
                                   extra_blocks=LastLevelP6P7(256, 256))
        net = FCOS(body, num_classes=len(self.classes), min_size=self.image_size,
                   max_size=self.image_size, score_thresh=score_thresh, nms_thresh=nms_thresh,
                   detections_per_img=detections_per_img)
        self._build(net, backbone_weights)


@BASELINES.register("fasterrcnn_resnet18")
class FasterRCNNDetector(_TorchvisionDetector):
    """torchvision Faster R-CNN on a ResNet + FPN (P2-P6), random init; class 0 = background.

    Args: as :class:`FCOSDetector`, plus ``anchor_sizes`` (one size per pyramid level, pixels;
    blood cells are 10-100 px at the usual image sizes, smaller than COCO's 32-512 defaults).
    """

    arch = "fasterrcnn_resnet18"
    label_offset = 1

    def __init__(self, *, classes: Sequence[str], image_size: int, backbone: str = "resnet18",
                 norm: str = "group", score_thresh: float = 0.05, nms_thresh: float = 0.5,
                 detections_per_img: int = 300,
                 anchor_sizes: Sequence[int] = (16, 32, 64, 128, 256),
                 backbone_weights: str = "") -> None:
        super().__init__(classes=classes, image_size=image_size, norm=norm, backbone=backbone,
                         score_thresh=score_thresh, nms_thresh=nms_thresh,
                         detections_per_img=detections_per_img, anchor_sizes=list(anchor_sizes))
        from torchvision.models.detection import FasterRCNN
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

        if len(anchor_sizes) != 5:
            raise ValueError(f"anchor_sizes needs one size per level P2-P6 (5), got "
                             f"{list(anchor_sizes)}")
        body = resnet_fpn_backbone(backbone_name=backbone, weights=None, norm_layer=nn.BatchNorm2d,
                                   trainable_layers=5)
        anchors = AnchorGenerator(tuple((int(s),) for s in anchor_sizes), ((0.5, 1.0, 2.0),) * 5)
        net = FasterRCNN(body, num_classes=len(self.classes) + 1, min_size=self.image_size,
                         max_size=self.image_size, rpn_anchor_generator=anchors,
                         box_score_thresh=score_thresh, box_nms_thresh=nms_thresh,
                         box_detections_per_img=detections_per_img)
        self._build(net, backbone_weights)
