"""Dense, open-vocabulary heads over the fused pyramid: detection and segmentation.

Both score visual embeddings against the text embeddings of the class names in the prompt
(cosine similarity x a learned scale + a bias predicted from the class embedding), so a class
name never seen in training needs no new layer.

detect: CenterNet-style. A tower on the fused stride-4 map predicts a class heatmap
``[B, K, H/4, W/4]`` and, per cell, distances to the four box edges. Decoding keeps 3x3 local
maxima, the top-k, and then torchvision's batched NMS.

segment: the fused stride-4 map is upsampled to stride 2, refined with the stem features and
compared per pixel with the class embeddings; the logits are upsampled to ``[B, K, H, W]``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms

from unihema.modeling import losses
from unihema.modeling.heads import HEADS, TaskHead, batch_class_names
from unihema.modeling.targets import build_detect_targets, cell_centres, decode_ltrb
from unihema.modeling.types import Fused, HeadOutput


def _gn(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, min(32, c // 8)), c)


class ClassScorer(nn.Module):
    """Similarity between ``[B, E, ...]`` visual embeddings and ``[K, E]`` class embeddings."""

    def __init__(self, d_text: int, embed_dim: int, prior: float) -> None:
        super().__init__()
        self.class_proj = nn.Linear(d_text, embed_dim)
        self.class_bias = nn.Linear(d_text, 1)
        nn.init.zeros_(self.class_bias.weight)
        nn.init.constant_(self.class_bias.bias, -math.log((1 - prior) / prior))
        # [1], not a 0-dim scalar: DeepSpeed ZeRO-3 cannot partition 0-dim parameters
        self.log_scale = nn.Parameter(torch.tensor([math.log(10.0)]))

    def forward(self, emb: torch.Tensor, names_emb: torch.Tensor) -> torch.Tensor:
        """``emb [B, E, h, w]``, ``names_emb [K, d_text]`` -> logits ``[B, K, h, w]``."""
        c = F.normalize(self.class_proj(names_emb), dim=-1)
        # cos = (v . c) / |v|: dividing the K logits per pixel, not the E embedding channels,
        # is the same number and a fraction of the work at stride 2 (F.normalize's eps)
        norm = torch.linalg.vector_norm(emb, dim=1, keepdim=True).clamp_min(1e-12)
        logits = torch.einsum("behw,ke->bkhw", emb, c) / norm * self.log_scale.exp()
        return logits + self.class_bias(names_emb).view(1, -1, 1, 1)


@HEADS.register("detect")
class DetectHead(TaskHead):
    task = "detect"
    stride = 4

    def __init__(self, *, d_model: int, d_text: int, dense_dim: int, embed_dim: int,
                 topk: int, score_threshold: float, nms_iou: float) -> None:
        super().__init__()
        self.tower = nn.Sequential(
            nn.Conv2d(d_model, dense_dim, 3, padding=1), _gn(dense_dim), nn.ReLU(inplace=True),
            nn.Conv2d(dense_dim, dense_dim, 3, padding=1), _gn(dense_dim), nn.ReLU(inplace=True),
        )
        self.embed = nn.Conv2d(dense_dim, embed_dim, 1)
        self.box = nn.Conv2d(dense_dim, 4, 3, padding=1)
        self.scorer = ClassScorer(d_text, embed_dim, prior=0.01)
        self.topk, self.score_threshold, self.nms_iou = topk, score_threshold, nms_iou

    @classmethod
    def from_config(cls, cfg) -> "DetectHead":
        return cls(d_model=cfg.d_model, d_text=cfg.text.d_model, dense_dim=cfg.heads.dense_dim,
                   embed_dim=cfg.heads.embed_dim, topk=cfg.heads.detect_topk,
                   score_threshold=cfg.heads.detect_score_threshold,
                   nms_iou=cfg.heads.detect_nms_iou)

    def forward(self, fused: Fused, batch) -> HeadOutput:
        """``logits [B, K, H/4, W/4]`` over the batch's ``K`` class names, ``ltrb [B, 4, H/4,
        W/4]`` edge distances in pixels."""
        names = batch_class_names(batch)
        x = self.tower(fused.maps["P2"])
        logits = self.scorer(self.embed(x), fused.embed_phrases(names))
        ltrb = F.softplus(self.box(x)) * self.stride * 4  # edge distances in pixels
        return HeadOutput(logits=logits, ltrb=ltrb, class_names=names)

    def loss(self, outputs: HeadOutput, batch) -> Dict[str, torch.Tensor]:
        names = outputs.class_names
        logits, ltrb = outputs.logits, outputs.ltrb
        index = {n: i for i, n in enumerate(names)}
        classes = [torch.tensor([index[cl[j]] for j in bc.tolist()], dtype=torch.long)
                   for cl, bc in zip(batch["classes"], batch["box_classes"])]
        tgt = build_detect_targets([torch.as_tensor(b) for b in batch["boxes"]], classes,
                                   len(names), tuple(logits.shape[-2:]), self.stride)
        # classes absent from an item's prompt are not negatives for that item
        allowed = torch.zeros(logits.shape[:2], dtype=torch.bool)
        for b, cl in enumerate(batch["classes"]):
            allowed[b, [index[n] for n in cl]] = True
        heat_loss = losses.centernet_focal_loss(
            logits[allowed], tgt.heatmap[allowed], tgt.num_objects)
        h, w = logits.shape[-2:]
        flat = ltrb.flatten(2).transpose(1, 2)  # [B, h*w, 4]
        centres = cell_centres((h, w), self.stride, ltrb.device)
        pred = decode_ltrb(centres[tgt.flat_index], flat[tgt.batch_index, tgt.flat_index])
        return {"loss_detect_heatmap": heat_loss,
                "loss_detect_box": losses.box_regression_loss(
                    pred, tgt.boxes, losses.class_balanced_weights(tgt.classes, power=0.5))}

    @torch.no_grad()
    def postprocess(self, outputs: HeadOutput, batch) -> List[Dict[str, Any]]:
        names = outputs.class_names
        index = {n: i for i, n in enumerate(names)}
        heat = outputs.logits.sigmoid()
        peaks = heat == F.max_pool2d(heat, 3, stride=1, padding=1)
        heat = heat * peaks
        b_, k_, h, w = heat.shape
        centres = cell_centres((h, w), self.stride, heat.device)
        results = []
        for b in range(b_):
            cols = torch.tensor([index[n] for n in batch["classes"][b]], dtype=torch.long)
            scores = heat[b, cols].flatten()
            top = scores.topk(min(self.topk, scores.numel()))
            keep = top.values >= self.score_threshold
            s, idx = top.values[keep], top.indices[keep]
            cls, cell = idx // (h * w), idx % (h * w)
            ltrb = outputs.ltrb[b].flatten(1).t()[cell]
            boxes = decode_ltrb(centres[cell], ltrb)
            oh, ow = batch["orig_sizes"][b]
            sc = batch["scales"][b]
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, ow * sc)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, oh * sc)
            keep = batched_nms(boxes, s, cls, self.nms_iou)
            results.append({"boxes": boxes[keep], "scores": s[keep], "classes": cls[keep]})
        return results


@HEADS.register("segment")
class SegmentHead(TaskHead):
    task = "segment"

    def __init__(self, *, d_model: int, d_text: int, stem_channels: int, dense_dim: int,
                 embed_dim: int) -> None:
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv2d(d_model, dense_dim, 3, padding=1), _gn(dense_dim),
                                    nn.ReLU(inplace=True))
        half = max(8, dense_dim // 2)
        self.stem = nn.Sequential(nn.Conv2d(stem_channels, half, 1), _gn(half),
                                  nn.ReLU(inplace=True))
        self.refine = nn.Sequential(nn.Conv2d(dense_dim + half, half, 3, padding=1), _gn(half),
                                    nn.ReLU(inplace=True))
        self.embed = nn.Conv2d(half, embed_dim, 1)
        self.scorer = ClassScorer(d_text, embed_dim, prior=0.2)
        # a softmax over the classes ignores a shift shared by all of them, so the scorer's
        # constant bias gets no gradient here: frozen (kept, so checkpoints keep their keys)
        self.scorer.class_bias.bias.requires_grad_(False)

    @classmethod
    def from_config(cls, cfg) -> "SegmentHead":
        # the stem (C1) of the ResNet trunk has backbone.width channels
        return cls(d_model=cfg.d_model, d_text=cfg.text.d_model, stem_channels=cfg.backbone.width,
                   dense_dim=cfg.heads.dense_dim, embed_dim=cfg.heads.embed_dim)

    def forward(self, fused: Fused, batch) -> HeadOutput:
        """``logits [B, K, H, W]`` over the batch's ``K`` class names."""
        names = batch_class_names(batch)
        x = self.reduce(fused.maps["P2"])
        c1 = fused.maps["C1"]
        x = F.interpolate(x, size=c1.shape[-2:], mode="bilinear", align_corners=False)
        x = self.refine(torch.cat([x, self.stem(c1)], 1))
        # score at stride 2 and upsample the K-channel logits: far cheaper than embedding and
        # normalising every full-resolution pixel, and the stem features carry the edges
        logits = self.scorer(self.embed(x), fused.embed_phrases(names))
        logits = F.interpolate(logits, scale_factor=2, mode="bilinear", align_corners=False)
        return HeadOutput(logits=logits, class_names=names)

    def _targets(self, outputs: HeadOutput, batch) -> torch.Tensor:
        """Item masks re-indexed into the batch class list; classes outside an item's prompt
        cannot occur in its mask, so a single softmax over the union is safe."""
        index = {n: i for i, n in enumerate(outputs.class_names)}
        masks = batch["masks"].clone()
        for b, cl in enumerate(batch["classes"]):
            lut = torch.tensor([index[n] for n in cl] + [-1], dtype=torch.long)
            masks[b] = lut[masks[b]]  # -1 indexes the trailing -1
        return masks

    def loss(self, outputs: HeadOutput, batch) -> Dict[str, torch.Tensor]:
        logits = outputs.logits
        target = self._targets(outputs, batch)
        return {"loss_segment_ce": F.cross_entropy(logits, target, ignore_index=-1),
                "loss_segment_dice": losses.soft_dice_loss(logits, target)}

    @torch.no_grad()
    def postprocess(self, outputs: HeadOutput, batch) -> List[Dict[str, Any]]:
        names = outputs.class_names
        index = {n: i for i, n in enumerate(names)}
        out = []
        for b, cl in enumerate(batch["classes"]):
            cols = torch.tensor([index[n] for n in cl], dtype=torch.long)
            out.append({"mask": outputs.logits[b, cols].argmax(0)})
        return out
