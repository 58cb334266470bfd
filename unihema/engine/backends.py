"""How one process trains: the backend strategy of the training loop.

The loop (:mod:`unihema.engine.loop`) is the same on every path; a backend owns what differs:

==================  ============================  ============================================
backend             wraps the model in            backward / optimizer step / checkpoint
==================  ============================  ============================================
:class:`Plain`      nothing (one process)         GradScaler (fp16), autocast, clipping,
                                                  AdamW every ``grad_accum`` micro-batches;
                                                  model and optimizer state in our files
:class:`DDP`        ``DistributedDataParallel``   as plain; gradients averaged over ranks
:class:`DeepSpeed`  the DeepSpeed engine (ZeRO)   the engine's backward and step (every
                                                  micro-batch; it counts the accumulation),
                                                  its own checkpoint folder
==================  ============================  ============================================

:func:`build_backend` picks one from the run (``--deepspeed``, the process count).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, ContextManager, Dict, Optional, Tuple

import torch
from torch import nn

from unihema.config.schema import Config
from unihema.engine import checkpoint as ckpt
from unihema.engine.distributed import (DistInfo, fill_deepspeed_config,
                                        scalar_parameter_broadcast_fix, zero_stage)

_HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Plain:
    """One process, plain PyTorch.

    Args:
        model: the module trained (its ``forward`` or ``loss`` is what the loop calls).
        optimizer: its optimizer.
        device: where the batches go.
        precision: ``fp32 | bf16 | fp16`` (resolved): autocast under bf16/fp16, a GradScaler
            under fp16.
        grad_clip: max gradient norm (0 = none).
        accum: micro-batches per optimizer step (each loss is divided by it).
    """

    name = "plain"
    #: whether the model and optimizer states live in the backend's own checkpoint files
    engine_checkpoint = False

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *,
                 device: torch.device, precision: str = "fp32", grad_clip: float = 0.0,
                 accum: int = 1) -> None:
        self.model, self.optimizer, self.device = model, optimizer, device
        self.precision, self.grad_clip, self.accum = precision, float(grad_clip), int(accum)
        self.wrapped: nn.Module = model
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16"
                                           and not self.engine_checkpoint)

    @property
    def engine(self) -> Any:
        """The DeepSpeed engine (None on the other backends)."""
        return None

    def describe(self) -> str:
        return ""

    def autocast(self) -> ContextManager:
        """The autocast context of a forward pass (none under fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_HALF[self.precision])

    def batch_dtype(self) -> Optional[torch.dtype]:
        """The dtype float tensors of a batch are cast to (None: kept)."""
        return None

    def backward(self, total: torch.Tensor) -> None:
        """Backward of a finite micro-batch loss."""
        self.scaler.scale(total / self.accum).backward()

    def skip(self) -> None:
        """A non-finite micro-batch: no backward pass."""

    def step(self, boundary: bool, any_finite: bool) -> None:
        """After every micro-batch; ``boundary``: it ends an optimizer step, ``any_finite``:
        a micro-batch of that step was finite (else the weights stay as they are)."""
        if not boundary:
            return
        if any_finite:
            if self.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)

    def save(self, directory: Path) -> Tuple[Optional[nn.Module], Optional[Dict[str, Any]]]:
        """Write the backend's own checkpoint files into ``directory`` (every rank calls it);
        returns what the main files hold: the model and the optimizer state."""
        return self.model, self.optimizer.state_dict()

    def load(self, directory: Path) -> None:
        """Restore the model and optimizer state that :meth:`save` and the main files hold."""
        ckpt.load_model(self.model, directory, device=str(self.device))
        self.optimizer.load_state_dict(ckpt.load_optimizer_state(directory))


class DDP(Plain):
    """``torchrun`` with several processes: ``DistributedDataParallel`` over NCCL or gloo."""

    name = "ddp"

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, **kwargs: Any
                 ) -> None:
        super().__init__(model, optimizer, **kwargs)
        ids = [self.device.index] if self.device.type == "cuda" else None
        # one task per step: the other heads get no gradient in that step
        self.wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=ids, find_unused_parameters=True)


class DeepSpeed(Plain):
    """The DeepSpeed engine with ZeRO stage 1, 2 or 3 (``--deepspeed CONFIG.json``).

    The engine does the partitioning, reduction, clipping and mixed precision; our AdamW and
    schedule are handed to it. A non-finite micro-batch still runs a zero-gradient backward,
    and an optimizer step without a finite micro-batch runs at learning rate 0, to keep the
    engine's collective calls aligned: the weights stay bitwise unchanged.
    """

    name = "deepspeed"
    engine_checkpoint = True

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, ds_config: Any,
                 cfg: Config, world_size: int, **kwargs: Any) -> None:
        import deepspeed

        super().__init__(model, optimizer, **kwargs)
        self.ds_config = fill_deepspeed_config(ds_config, cfg, precision=self.precision,
                                               world_size=world_size)
        with scalar_parameter_broadcast_fix():
            self._engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer,
                                                         config=self.ds_config)
        self.wrapped = self._engine

    @property
    def engine(self) -> Any:
        return self._engine

    def describe(self) -> str:
        return f", DeepSpeed ZeRO-{zero_stage(self.ds_config)}"

    def autocast(self) -> ContextManager:
        return contextlib.nullcontext()  # the engine holds half-precision weights itself

    def batch_dtype(self) -> Optional[torch.dtype]:
        return _HALF.get(self.precision)

    def backward(self, total: torch.Tensor) -> None:
        self._engine.backward(total)

    def skip(self) -> None:
        zero = sum((p * 0).sum() for p in self.model.parameters() if p.requires_grad)
        self._engine.backward(zero)

    def step(self, boundary: bool, any_finite: bool) -> None:
        if boundary and not any_finite:
            saved = [g["lr"] for g in self.optimizer.param_groups]
            for g in self.optimizer.param_groups:
                g["lr"] = 0.0
            self._engine.step()
            for g, lr in zip(self.optimizer.param_groups, saved):
                g["lr"] = lr
        else:
            self._engine.step()

    def save(self, directory: Path) -> Tuple[Optional[nn.Module], Optional[Dict[str, Any]]]:
        self._engine.save_checkpoint(str(directory / ckpt.DS_FOLDER), tag=ckpt.DS_TAG,
                                     save_latest=False)
        return None, None

    def load(self, directory: Path) -> None:
        self._engine.load_checkpoint(str(directory / ckpt.DS_FOLDER), tag=ckpt.DS_TAG,
                                     load_optimizer_states=True,
                                     load_lr_scheduler_states=False)


def build_backend(model: nn.Module, optimizer: torch.optim.Optimizer, *, cfg: Config,
                  dist: DistInfo, precision: str, deepspeed: Any = "") -> Plain:
    """The backend of a run of ``cfg``: DeepSpeed when ``deepspeed`` (a JSON path or dict)
    is given, DDP when several processes run, else plain."""
    common = dict(device=dist.device, precision=precision, grad_clip=cfg.train.grad_clip,
                  accum=cfg.train.grad_accum)
    if deepspeed:
        return DeepSpeed(model, optimizer, ds_config=deepspeed, cfg=cfg,
                         world_size=dist.world_size, **common)
    if dist.distributed:
        return DDP(model, optimizer, **common)
    return Plain(model, optimizer, **common)


__all__ = ["DDP", "DeepSpeed", "Plain", "build_backend"]
