"""The specialist baselines' registry, construction and checkpoints.

The models themselves: :mod:`unihema.baselines.base` (the contract, :class:`Specialist`),
:mod:`~unihema.baselines.detectors`, :mod:`~unihema.baselines.segmenter` and
:mod:`~unihema.baselines.classifier`; importing this module registers them all in
:data:`BASELINES`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, Optional

import safetensors.torch

from unihema import __version__
from unihema.baselines.base import (BASELINES, DEFAULT_ARCH, KINDS, NORMS, Specialist,
                                    UnknownClassError, convert_norms, item_key,
                                    load_resnet_weights, valid_size)
from unihema.baselines.classifier import ResNetClassifier
from unihema.baselines.detectors import FasterRCNNDetector, FCOSDetector
from unihema.baselines.segmenter import UNetSegmenter
from unihema.utils import atomic_save, atomic_write_text, sha256_file
from unihema.modeling.weights import WeightsError, kwargs_problems, load_into, read_json

logger = logging.getLogger(__name__)

__all__ = ["BASELINES", "DEFAULT_ARCH", "KINDS", "NORMS", "FCOSDetector", "FasterRCNNDetector",
           "ResNetClassifier", "Specialist", "UNetSegmenter", "UnknownClassError",
           "build_baseline", "convert_norms", "item_key", "load_baseline",
           "load_resnet_weights", "save_baseline", "valid_size"]


def build_baseline(arch: str, *, kind: Optional[str] = None, **kwargs: Any) -> Specialist:
    """``BASELINES.get(arch)(**kwargs)``, checking that the arch is of ``kind`` when given."""
    cls = BASELINES.get(arch)
    if kind is not None and cls.kind != kind:
        same = [n for n, c in BASELINES.items() if c.kind == kind]
        raise ValueError(f"arch '{arch}' is a {cls.kind}, not a {kind}; {kind}s: {same}")
    return cls(**kwargs)


# --------------------------------------------------------------------------- checkpoints
CONFIG_NAME = "baseline.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "unihema-baseline/1"
_RESERVED = ("format", "unihema_version", "kind", "arch", "task", "classes", "image_size",
             "kwargs", "weights_sha256")


def save_baseline(model: Specialist, directory: Any,
                  extra: Optional[Dict[str, Any]] = None) -> Path:
    """Write ``baseline.json`` + ``model.safetensors`` into ``directory``; returns it.

    ``baseline.json``: ``format``, ``kind``, ``arch``, ``task``, ``classes``, ``image_size``,
    ``kwargs`` (the constructor arguments), ``weights_sha256`` and the keys of ``extra`` (e.g.
    ``train``: the training summary). Each file is written to a temporary name and renamed; the
    JSON goes last and records the weights' sha256, so a save interrupted between the two renames
    is detected by :func:`load_baseline` instead of pairing new weights with an old description.
    """
    clash = sorted(set(extra or {}) & set(_RESERVED))
    if clash:
        raise ValueError(f"save_baseline: extra keys {clash} are reserved ({list(_RESERVED)})")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = atomic_save(directory / WEIGHTS_NAME,
                          lambda tmp: safetensors.torch.save_model(model, str(tmp)))
    digest = sha256_file(weights)
    meta = {"format": FORMAT, "unihema_version": __version__, "kind": model.kind,
            "arch": model.arch, "task": model.task, "classes": list(model.classes),
            "image_size": model.image_size, "kwargs": dict(model.init_kwargs),
            "weights_sha256": digest, **(extra or {})}
    atomic_write_text(directory / CONFIG_NAME, json.dumps(meta, indent=2) + "\n")
    return directory


def load_baseline(directory: Any, map_location: str = "cpu") -> Specialist:
    """Rebuild a specialist written by :func:`save_baseline` (eval mode; no pickle is read).

    ``model.checkpoint_meta`` holds the whole ``baseline.json``.

    Raises:
        FileNotFoundError: the folder, ``baseline.json`` or ``model.safetensors`` is missing.
        KeyError: the recorded arch is not registered (lists the registered ones).
        ValueError: (``WeightsError`` among them) unreadable JSON, a key of the wrong type (as
            ``kwargs.image_size``), damaged weights, a sha256 that differs from the record, or
            weights that do not fit the rebuilt model (names the tensors and shapes).
    """
    directory = Path(directory)
    cfg_path = directory / CONFIG_NAME
    if not cfg_path.is_file():
        raise FileNotFoundError(f"'{directory}' is not a baseline folder: no {CONFIG_NAME} "
                                f"(written by `unihema baseline train`)")
    meta = read_json(cfg_path, "the JSON object save_baseline writes, with 'arch' and 'kwargs'")
    if not (isinstance(meta, dict) and isinstance(meta.get("arch"), str)
            and isinstance(meta.get("kwargs"), dict)):
        got = {k: type(meta.get(k)).__name__ for k in ("arch", "kwargs")} \
            if isinstance(meta, dict) else f"a {type(meta).__name__}"
        raise WeightsError(f"{cfg_path}: expected a JSON object with 'arch' (str) and 'kwargs' "
                           f"(a mapping: dict), got {got}")
    arch, kwargs, recorded = meta["arch"], dict(meta["kwargs"]), meta.get("weights_sha256")
    if arch not in BASELINES:
        raise KeyError(f"{cfg_path}: unknown baseline arch '{arch}'; registered: "
                       f"{', '.join(BASELINES)}")
    problems = kwargs_problems(BASELINES.get(arch), kwargs)
    if recorded is not None and not (isinstance(recorded, str) and len(recorded) == 64):
        problems.append(f"weights_sha256: expected 64 hex digits, got {recorded!r}")
    if problems:
        raise WeightsError(f"{cfg_path}: {len(problems)} invalid key(s):"
                           + "".join(f"\n  {e}" for e in problems))
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{directory}: {WEIGHTS_NAME} is missing")
    if recorded and sha256_file(weights) != recorded:
        raise ValueError(f"{weights}: sha256 differs from the one in {CONFIG_NAME} (an "
                         f"interrupted save or a replaced file)")
    try:
        model = BASELINES.get(arch)(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{cfg_path}: kwargs {sorted(kwargs)} do not fit '{arch}': "
                         f"{exc}") from None
    load_into(model, weights, device=map_location, described_by=f"{CONFIG_NAME} ('{arch}')")
    model.checkpoint_meta = meta
    return model.eval()
