"""Small helpers of the training and inference paths: seeding, the optimizer, moving a batch
to a device."""

from __future__ import annotations

import random
from typing import Any, Optional

import numpy as np
import torch

from unihema.config.schema import Config


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """AdamW; norms, biases, gates, embeddings and scales get no weight decay."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "embed" in name or "norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.train.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.train.lr, betas=(0.9, 0.98))


def to_device(obj: Any, device: torch.device, dtype: Optional[torch.dtype] = None) -> Any:
    """Move every tensor of a (nested) batch to ``device``; float tensors to ``dtype`` if
    given (DeepSpeed fp16/bf16 engines hold half-precision weights)."""
    if torch.is_tensor(obj):
        if dtype is not None and obj.is_floating_point():
            return obj.to(device, dtype, non_blocking=True)
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: to_device(v, device, dtype) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_device(v, device, dtype) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_device(v, device, dtype) for v in obj)
    return obj
