"""Processes, devices, precision and DeepSpeed configs for the one training loop.

Three ways to run the same config:

* one process (``unihema train``): plain PyTorch on the CPU or ``cuda:0``;
* ``torchrun --nproc_per_node N tools/train.py ...``: one process per GPU (or N CPU processes),
  ``DistributedDataParallel`` over NCCL (GPUs) or gloo (CPU);
* ``--deepspeed configs/deepspeed/zero2.json`` (under ``deepspeed`` or ``torchrun``): the
  DeepSpeed engine with ZeRO stage 1, 2 or 3.

The launchers set ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
a DeepSpeed run started as a plain single process gets single-process defaults (DeepSpeed would
otherwise try MPI discovery).

DeepSpeed JSON files use ``"auto"`` for every value the unihema config owns;
:func:`fill_deepspeed_config` resolves them (and refuses ``optimizer`` / ``scheduler``
sections: AdamW, warm-up and cosine decay come from ``train.*`` on every path so that a run
behaves the same with and without DeepSpeed, and the scheduler state lives in our checkpoint).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch
import torch.distributed as dist

from unihema.config.schema import Config


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(deepspeed: bool = False) -> DistInfo:
    """Read the launcher's environment, pick the device and start the process group when there
    is more than one process (or DeepSpeed needs one). Idempotent."""
    if deepspeed:
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
        os.environ.setdefault("LOCAL_RANK", "0")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        device = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if (world > 1 or deepspeed) and not (dist.is_available() and dist.is_initialized()):
        backend = "nccl" if device.type == "cuda" else "gloo"
        if deepspeed:
            import deepspeed as ds

            ds.init_distributed(dist_backend=backend)
        else:
            dist.init_process_group(backend=backend)
    return DistInfo(rank, world, local, device)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_finite(value: bool, device: torch.device) -> bool:
    """True when ``value`` holds on every rank: all ranks skip a non-finite step together
    (one rank skipping a backward that the others run would hang the collective ops)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    flag = torch.tensor([1.0 if value else 0.0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item() > 0)


def rank0_value(value: float, device: torch.device) -> float:
    """Rank 0's ``value`` on every rank (e.g. its clock, so every rank stops at one step)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t.item())


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX tiles). Elsewhere bf16 is
    emulated on the CPU and slower than fp32."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # a torch build without the probes
        return False


def resolve_precision(precision: str, device: torch.device, cpu_bf16: bool = False,
                      deepspeed: bool = False) -> str:
    """``train.precision`` -> ``fp32 | bf16 | fp16`` for ``device``. ``auto``: bf16 where the
    GPU supports it, fp16 on other GPUs; on a CPU fp32, or bf16 with ``cpu_bf16`` when the
    CPU has native bf16 (:func:`cpu_has_bf16`) and the run is plain PyTorch (bf16 autocast on
    a CPU is not a DeepSpeed path, so ``deepspeed`` runs on a CPU stay fp32)."""
    if precision != "auto":
        if device.type != "cuda" and precision == "fp16":
            raise ValueError(f"train.precision=fp16 needs a GPU; this run is on the "
                             f"{device.type} (use fp32, auto or, on a CPU with native bf16, "
                             f"bf16)")
        if device.type == "cpu" and precision == "bf16" and deepspeed:
            raise ValueError("train.precision=bf16 on a CPU is plain-PyTorch autocast; "
                             "DeepSpeed runs on a CPU train in fp32 (use fp32 or auto)")
        if device.type == "cpu" and precision == "bf16" and not cpu_has_bf16():
            raise ValueError("train.precision=bf16 on this CPU: it has no native bf16 "
                             "(AVX512-BF16 or AMX), so bf16 would be slower than fp32; use "
                             "fp32 or auto")
        return precision
    if device.type != "cuda":
        native = cpu_bf16 and not deepspeed and device.type == "cpu" and cpu_has_bf16()
        return "bf16" if native else "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


# --------------------------------------------------------------------------- DeepSpeed config
#: keys whose value comes from the unihema config (the JSON may say "auto" or repeat it).
OWNED = ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size",
         "gradient_clipping", "bf16.enabled", "fp16.enabled", "steps_per_print")


def _get(d: Dict[str, Any], dotted: str) -> Any:
    for part in dotted.split(".")[:-1]:
        d = d.get(part, {})
    return d.get(dotted.split(".")[-1], None)


def _set(d: Dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        d = d.setdefault(part, {})
    d[parts[-1]] = value


def fill_deepspeed_config(ds: Union[str, Path, Dict[str, Any]], cfg: Config, *,
                          world_size: int, precision: str) -> Dict[str, Any]:
    """The DeepSpeed config of ``ds`` (a JSON path or dict) with every value unihema owns
    filled in from ``cfg``:

    ========================================  =============================================
    ``train_micro_batch_size_per_gpu``        ``data.batch_size``
    ``gradient_accumulation_steps``           ``train.grad_accum``
    ``train_batch_size``                      micro batch x grad_accum x ``world_size``
    ``gradient_clipping``                     ``train.grad_clip``
    ``bf16.enabled`` / ``fp16.enabled``       ``precision`` (resolved ``train.precision``)
    ``steps_per_print``                       ``train.log_every``
    ========================================  =============================================

    A key given explicitly must agree with the config (two sources of truth would disagree
    silently otherwise). ``optimizer`` and ``scheduler`` sections are refused.

    Raises:
        ValueError: naming the key, the JSON value and the config value, or the section.
    """
    if isinstance(ds, (str, Path)):
        path = Path(ds)
        try:
            out = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"DeepSpeed config '{path}' not found (see "
                                    f"configs/deepspeed/zero{{1,2,3}}.json)") from None
        except ValueError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        where = str(path)
    else:
        out = json.loads(json.dumps(ds))
        where = "DeepSpeed config"
    for section in ("optimizer", "scheduler"):
        if section in out:
            raise ValueError(f"{where}: remove the '{section}' section; unihema's AdamW with "
                             f"warm-up + cosine decay is configured by train.lr, "
                             f"train.weight_decay, train.warmup_steps and train.max_steps")
    micro = cfg.data.batch_size
    accum = cfg.train.grad_accum
    values = {
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accum,
        "train_batch_size": micro * accum * world_size,
        "gradient_clipping": float(cfg.train.grad_clip),
        "bf16.enabled": precision == "bf16",
        "fp16.enabled": precision == "fp16",
        "steps_per_print": max(1, cfg.train.log_every),
    }
    for key in OWNED:
        given = _get(out, key)
        if given not in (None, "auto") and given != values[key]:
            raise ValueError(f"{where}: '{key}' is {given!r} but the unihema config gives "
                             f"{values[key]!r}; write \"auto\" (or remove it) and set the "
                             f"unihema key instead")
        _set(out, key, values[key])
    return out


@contextlib.contextmanager
def scalar_parameter_broadcast_fix():
    """Within the block, DeepSpeed's initial parameter broadcast handles 0-dim parameters.

    DeepSpeed (0.19) broadcasts each parameter as ``p.data.view(torch.uint8)``, which raises
    for 0-dim tensors (the model's fusion gates and logit scales). During that broadcast each
    0-dim parameter is given a 1-element view of its own storage, so the broadcast value lands in
    the parameter itself; the 0-dim view is restored right after.
    """
    from deepspeed.runtime.engine import DeepSpeedEngine

    original = DeepSpeedEngine._broadcast_model

    def broadcast(engine):
        scalars = [p for p in engine.module.parameters() if p.dim() == 0]
        saved = [p.data for p in scalars]
        for p in scalars:
            p.data = p.data.view(1)
        try:
            original(engine)
        finally:
            for p, data in zip(scalars, saved):
                p.data = data

    DeepSpeedEngine._broadcast_model = broadcast
    try:
        yield
    finally:
        DeepSpeedEngine._broadcast_model = original


def zero_stage(ds_config: Dict[str, Any]) -> int:
    return int(ds_config.get("zero_optimization", {}).get("stage", 0))


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The user model inside a DDP wrapper or a DeepSpeed engine."""
    return getattr(model, "module", model)


def env_summary(info: DistInfo) -> str:
    return (f"rank {info.rank}/{info.world_size} on {info.device}"
            f"{' (' + dist.get_backend() + ')' if dist.is_initialized() else ''}")


def deepspeed_available() -> Optional[str]:
    """``None`` when deepspeed imports, else the reason it does not."""
    try:
        import deepspeed  # noqa: F401
    except Exception as exc:  # deepspeed raises various errors when misinstalled
        return f"{type(exc).__name__}: {exc}"
    return None
