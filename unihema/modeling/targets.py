"""Target assignment for the dense detection head (kept apart from the loss and the model).

Each ground-truth box becomes a Gaussian peak on the heatmap of its class at the feature
location of its centre (CenterNet), with a radius that keeps boxes shifted within it above an
IoU of ``min_overlap`` with the truth. The centre location also regresses the box edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import torch


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """Largest centre shift (in feature cells) keeping IoU >= ``min_overlap`` (CornerNet)."""
    a1, b1 = 1.0, height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2 = 4.0, 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


@dataclass
class DetectTargets:
    """``heatmap [B, K, h, w]``, and for each positive location: batch index, flat index into
    ``h * w``, the box ``[N, 4]`` xyxy in image pixels and its class index ``[N]``."""

    heatmap: torch.Tensor
    batch_index: torch.Tensor
    flat_index: torch.Tensor
    boxes: torch.Tensor
    num_objects: int
    classes: torch.Tensor


def build_detect_targets(
    boxes: Sequence[torch.Tensor],
    classes: Sequence[torch.Tensor],
    num_classes: int,
    size: Tuple[int, int],
    stride: int,
) -> DetectTargets:
    """Heatmaps and regression targets for a batch.

    Args:
        boxes: per image ``[N_i, 4]`` xyxy pixels in the (padded) input image.
        classes: per image ``[N_i]`` indices into the batch class list (``< num_classes``).
        num_classes: ``K``, heatmap channels.
        size: ``(h, w)`` of the feature map; ``stride`` its step in input pixels.
    """
    h, w = size
    device = boxes[0].device if len(boxes) else torch.device("cpu")
    heat = torch.zeros(len(boxes), num_classes, h, w, device=device)
    bi, fi, bx, kk = [], [], [], []
    ys = torch.arange(h, device=device, dtype=torch.float32)[:, None]
    xs = torch.arange(w, device=device, dtype=torch.float32)[None, :]
    for b, (bb, cc) in enumerate(zip(boxes, classes)):
        for box, k in zip(bb.tolist(), cc.tolist()):
            x0, y0, x1, y1 = (v / stride for v in box)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            ix, iy = min(w - 1, max(0, int(cx))), min(h - 1, max(0, int(cy)))
            radius = max(0.0, gaussian_radius(y1 - y0, x1 - x0))
            sigma = max(radius / 3.0, 0.35)
            g = torch.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma ** 2))
            heat[b, k] = torch.maximum(heat[b, k], g)
            heat[b, k, iy, ix] = 1.0
            bi.append(b)
            fi.append(iy * w + ix)
            bx.append(box)
            kk.append(k)
    return DetectTargets(
        heatmap=heat,
        batch_index=torch.tensor(bi, dtype=torch.long, device=device),
        flat_index=torch.tensor(fi, dtype=torch.long, device=device),
        boxes=torch.tensor(bx, dtype=torch.float32, device=device).reshape(-1, 4),
        num_objects=len(bx),
        classes=torch.tensor(kk, dtype=torch.long, device=device),
    )


def cell_centres(size: Tuple[int, int], stride: int, device: torch.device) -> torch.Tensor:
    """Pixel coordinates ``[h * w, 2]`` (x, y) of the centres of feature cells."""
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device),
                            indexing="ij")
    return torch.stack([(xs.flatten() + 0.5) * stride, (ys.flatten() + 0.5) * stride], 1).float()


def decode_ltrb(centres: torch.Tensor, ltrb: torch.Tensor) -> torch.Tensor:
    """Boxes ``[N, 4]`` xyxy from cell centres ``[N, 2]`` and edge distances ``[N, 4]``."""
    return torch.cat([centres - ltrb[:, :2], centres + ltrb[:, 2:]], 1)
