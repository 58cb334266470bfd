"""Whether a checkpoint can resume this run, decided before the run folder is touched.

:func:`check_resume` reads only the checkpoint's ``state.json`` and the header of its
``model.safetensors``; it runs before the trainer writes ``config.yaml``, moves damaged
checkpoints aside or opens ``metrics.jsonl``, so a resume that cannot go ahead leaves the run
folder byte for byte as it was. Its error is one paragraph: what differs (the kind of run, the
number of processes, or the tensors with their shapes and the model settings behind them) and
what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import torch

from unihema.config.loader import to_dict
from unihema.engine import checkpoint as ckpt
from unihema.modeling.weights import summarize


def _flat(d: Any, prefix: str) -> Dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: Dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}"))
    return out


def config_differences(stored: Any, current: Any, prefix: str = "model") -> List[str]:
    """``"model.d_model: 32 in the checkpoint, 48 in this run"`` for each differing key."""
    a, b = _flat(stored, prefix), _flat(current, prefix)
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k, "<absent>") != b.get(k, "<absent>"):
            out.append(f"{k}: {a.get(k, '<absent>')!r} in the checkpoint, "
                       f"{b.get(k, '<absent>')!r} in this run")
    return out


def check_resume(directory: Path, model: torch.nn.Module, cfg: Any, *, deepspeed: bool,
                 world_size: int) -> None:
    """Raise :class:`~unihema.engine.checkpoint.CheckpointError` unless the checkpoint in
    ``directory`` can resume this run: written by the same kind of run (plain PyTorch or
    DeepSpeed) with the same number of processes, and (plain runs) holding exactly the
    tensors of ``model`` with the same shapes."""
    directory = Path(directory)
    out = Path(cfg.train.output_dir)
    keep = (f"Nothing in {out} was changed." if (out / "checkpoints") in directory.parents
            else "")
    state = ckpt.read_state(directory)
    if bool(state.get("deepspeed")) != deepspeed:
        kind = "a DeepSpeed" if state.get("deepspeed") else "a plain PyTorch"
        raise ckpt.CheckpointError(
            f"{directory} is {kind} checkpoint; resume it the same way (or convert it with "
            f"`unihema convert-checkpoint` and start a new run from model.pretrained). {keep}")
    if state.get("world_size", 1) != world_size:
        raise ckpt.CheckpointError(
            f"{directory} was written by {state.get('world_size')} processes, this run has "
            f"{world_size}; the data order would differ, so resume it with the same number "
            f"(or convert it and fine-tune from it). {keep}")
    if deepspeed:  # the engine's own files; DeepSpeed checks them when it loads
        return
    differ = ckpt.misfits(model, directory)
    if not differ:
        return
    settings = config_differences((state.get("config") or {}).get("model"),
                                  to_dict(cfg.model))
    why = f"the model settings differ ({summarize(settings, 5)}), so " if settings else ""
    raise ckpt.CheckpointError(
        f"{directory / ckpt.MODEL} does not fit this run's model: {why}{len(differ)} "
        f"tensor(s) differ: {summarize(differ)}. Resume with the model settings the checkpoint "
        f"was written with (its {ckpt.STATE} holds the whole config), or start the new model "
        f"in another train.output_dir. {keep}".rstrip())
