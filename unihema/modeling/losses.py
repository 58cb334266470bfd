"""Losses: pure functions of predictions and targets (no module state).

Shapes follow the heads: heatmaps ``[B, K, h, w]``, boxes ``[N, 4]`` absolute xyxy, masks
``[B, H, W]`` with ``-1`` = ignore.
"""

from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn.functional as F
from torchvision.ops import generalized_box_iou_loss


def centernet_focal_loss(logits: torch.Tensor, target: torch.Tensor, num_objects: int,
                         alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """Penalty-reduced focal loss on Gaussian heatmaps (CenterNet), summed / ``num_objects``.

    Args:
        logits: ``[B, K, h, w]`` raw scores.
        target: ``[B, K, h, w]`` in [0, 1], exactly 1 at object centres.
        num_objects: normaliser (at least 1).
    """
    p = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1.0 - pos
    pos_loss = torch.log(p) * (1 - p) ** alpha * pos
    neg_loss = torch.log(1 - p) * p ** alpha * (1 - target) ** beta * neg
    return -(pos_loss.sum() + neg_loss.sum()) / max(1, num_objects)


def box_regression_loss(pred: torch.Tensor, target: torch.Tensor,
                        weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """GIoU loss plus a scale-normalised L1 term on matched ``[N, 4]`` xyxy boxes, averaged
    over boxes with ``weight [N]`` (uniform when ``None``)."""
    if pred.numel() == 0:
        return pred.sum() * 0.0
    if weight is None:
        weight = pred.new_ones(pred.shape[0])
    giou = generalized_box_iou_loss(pred, target, reduction="none")
    size = (target[:, 2:] - target[:, :2]).clamp(min=1.0).repeat(1, 2)
    l1 = ((pred - target).abs() / size).mean(1)
    return ((giou + l1) * weight).sum() / weight.sum().clamp(min=1e-6)


def class_balanced_weights(classes: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """``[N]`` weights ``count(class) ** -power``. With ``power=1`` every class present counts
    equally (thirty red cells in a field do not drown the box sizes of its one white cell);
    ``power=0.5`` is the middle ground, a class's total weight growing as the square root of
    its count; ``0`` is uniform."""
    if classes.numel() == 0:
        return classes.float()
    counts = torch.bincount(classes).float()
    return counts[classes].pow(-power)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = -1
                   ) -> torch.Tensor:
    """Multi-class soft Dice over classes present in the batch; ``logits [B, K, H, W]``,
    ``target [B, H, W]`` class indices (``ignore_index`` pixels excluded)."""
    valid = target.ne(ignore_index)
    probs = logits.float().softmax(1) * valid[:, None]
    onehot = F.one_hot(target.clamp(min=0), logits.shape[1]).permute(0, 3, 1, 2).float()
    onehot = onehot * valid[:, None]
    inter = (probs * onehot).sum((0, 2, 3))
    denom = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    present = onehot.sum((0, 2, 3)) > 0
    if not present.any():
        return logits.sum() * 0.0
    dice = (2 * inter + 1.0) / (denom + 1.0)
    return (1 - dice[present]).mean()


def ragged_cross_entropy(logits: List[torch.Tensor], labels: List[int]) -> torch.Tensor:
    """Mean cross-entropy over items whose candidate lists differ in length."""
    losses = [F.cross_entropy(lg[None], torch.tensor([y], device=lg.device))
              for lg, y in zip(logits, labels)]
    return torch.stack(losses).mean()
