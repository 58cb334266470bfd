"""Training checkpoint -> a plain ``save_pretrained`` model directory.

    unihema convert-checkpoint runs/big/checkpoints/step_00020000 runs/big/model-20k
    unihema convert-checkpoint runs/big runs/big/model-latest      # newest complete one

Works for both kinds of :mod:`unihema.engine.checkpoint` folders: plain ones (weights already in
``model.safetensors``) and DeepSpeed ones, whose ZeRO-partitioned fp32 master weights (any stage,
any precision) are gathered with DeepSpeed's ``zero_to_fp32`` utilities on the CPU, without
launching processes. The checkpoint is verified against its ``COMPLETE`` marker first; the
result loads with ``UniHema.from_pretrained`` like any trained model.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Dict, Union

import torch

from unihema.data.duplicates import TRAIN_IMAGES
from unihema.engine import checkpoint as ckpt

logger = logging.getLogger(__name__)


def _checkpoint_folder(path: Path) -> Path:
    if (path / ckpt.MARKER).exists() or ckpt._NAME.match(path.name):
        ckpt.verify(path)
        return path
    root = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    found = ckpt.find_latest(root)
    if found is None:
        raise FileNotFoundError(f"'{path}' holds no complete unihema checkpoint (expected a "
                                f"step_NNNNNNNN folder, a checkpoints/ folder or a run folder)")
    return found


def _tied(model: torch.nn.Module, name: str) -> bool:
    """Whether parameter ``name`` shares its storage with another (a tied weight)."""
    params = dict(model.named_parameters(remove_duplicate=False))
    if name not in params:
        return False
    ptr = params[name].data_ptr()
    return any(k != name and p.data_ptr() == ptr for k, p in params.items())


def load_weights(directory: Path) -> Dict[str, torch.Tensor]:
    """The full fp32 state dict stored in a (verified) checkpoint folder."""

    if (directory / ckpt.MODEL).is_file():
        return ckpt.read_tensors(directory / ckpt.MODEL)
    ds_dir = directory / ckpt.DS_FOLDER
    if not ds_dir.is_dir():
        raise ckpt.CheckpointError(f"{directory}: neither {ckpt.MODEL} nor {ckpt.DS_FOLDER}/")
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    state = get_fp32_state_dict_from_zero_checkpoint(str(ds_dir), tag=ckpt.DS_TAG)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def convert_checkpoint(source: Union[str, Path], out: Union[str, Path]) -> Path:
    """Write ``out`` (``config.json`` + ``model.safetensors`` + tokenizer, and the run's
    ``train_images.json`` when the checkpoint holds it) from a training checkpoint folder, a
    ``checkpoints/`` folder or a run folder (newest complete checkpoint).

    Raises:
        FileNotFoundError: no complete checkpoint found.
        CheckpointError: the checkpoint fails verification or holds no weights.
    """
    from unihema.config.loader import from_dict
    from unihema.config.schema import Config
    from unihema.modeling.model import UniHema

    directory = _checkpoint_folder(Path(source))
    state = ckpt.read_state(directory)
    cfg = from_dict(Config, state["config"])
    model_cfg = cfg.model
    # the weights come from the checkpoint: skip any pretrained initialisation of the config
    model_cfg = dataclasses.replace(
        model_cfg, pretrained="",
        backbone=dataclasses.replace(model_cfg.backbone, pretrained=""),
        text=dataclasses.replace(model_cfg.text, pretrained=""))
    model = UniHema.from_config(model_cfg)
    if (directory / ckpt.MODEL).is_file():
        ckpt.load_model(model, directory)
    else:
        missing, unexpected = model.load_state_dict(load_weights(directory), strict=False)
        # zero_to_fp32 stores tied weights (the T5 embeddings) under one of their names
        missing = [k for k in missing if not _tied(model, k)]
        if missing or unexpected:
            raise ckpt.CheckpointError(
                f"{directory}: weights do not fit the stored config: missing "
                f"{list(missing)[:8]}, unexpected {list(unexpected)[:8]}")
    extra = dict(state.get("extra") or {}, converted_from=str(directory))
    out = model.save_pretrained(Path(out), extra=extra)
    if (directory / TRAIN_IMAGES).is_file():  # what unihema eval compares evaluated images to
        shutil.copyfile(directory / TRAIN_IMAGES, out / TRAIN_IMAGES)
    logger.info("converted %s (step %s) to %s", directory, state.get("step"), out)
    return out
