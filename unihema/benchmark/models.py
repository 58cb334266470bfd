"""Model loading for evaluation, in one place: a unihema checkpoint, a run folder holding
``model/``, or a specialist baseline folder, each as a :class:`LoadedModel` that predicts on
CPU batches.

* checkpoint folder (``config.json`` + ``model.safetensors``): a
  :class:`~unihema.modeling.model.UniHema` whose text tasks read through a
  :class:`~unihema.modeling.reading.ReadingCascade` (``reading="model"`` or ``"truth"``); its
  image size, upscaling and crop size come from its ``preprocessor_config.json``
  (:class:`~unihema.pipeline.processing.UniHemaProcessor`), for an older checkpoint from its
  ``config.json``, else from the run folder's ``config.yaml``;
* run folder (e.g. ``runs/demo``): its ``model/`` checkpoint;
* baseline folder (``baseline.json``): :func:`unihema.baselines.load_baseline`.

``unihema eval``, the specialist comparison (tools/compare_specialists.py) and the probes load
through :func:`load_model`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from unihema.config.loader import read_yaml

logger = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model ready for scoring: ``predict(batch) -> list[dict]`` (formats in
    :mod:`unihema.evaluation`), its tasks and the image size it expects (``None``: unknown)."""

    name: str
    path: Path
    kind: str
    model: Any
    tasks: List[str]
    image_size: Optional[int] = None
    upscale: bool = False
    #: longer side the model's single-cell crops were resized to (0: native size)
    crop_size: int = 0
    device: str = "cpu"
    #: hashes of the model's training images (``train_images.json``); None: unknown
    train_images: Any = None
    #: what predicts: the model itself, or for a unihema model its reading cascade
    #: (``cascade.source``: what the text tasks read)
    cascade: Any = None

    def predict(self, batch: Dict[str, Any]) -> List[Dict[str, Any]]:
        """Predictions of a CPU batch (moved to :attr:`device` and back)."""
        import torch

        if self.device != "cpu":
            from unihema.engine.utils import to_device

            batch = to_device(batch, torch.device(self.device))
        with torch.no_grad():
            return _to_cpu((self.cascade or self.model).predict(batch))


def _to_cpu(obj: Any) -> Any:
    import torch

    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _run_image_size(run_dir: Path) -> Optional[int]:
    cfg = run_dir / "config.yaml"
    if not cfg.is_file():
        return None
    size = (read_yaml(cfg).get("data") or {}).get("image_size")
    return int(size) if isinstance(size, int) else None


def load_model(path: Union[str, Path], *, name: Optional[str] = None,
               device: str = "cpu", reading: str = "model") -> LoadedModel:
    """Load a checkpoint folder, a run folder holding ``model/`` or a baseline folder.

    The image size is the checkpoint's ``image_size`` (saved by the trainer), else the run
    folder's ``config.yaml`` ``data.image_size``, else ``None`` (the suite or 256 decides).
    ``reading``: what a unihema model's text tasks read, ``"model"`` (its own heads) or
    ``"truth"`` (the annotations; docs/model.md, "The reading").

    Raises:
        FileNotFoundError: ``path`` is none of the three layouts (says what was looked for).
    """
    from unihema.data.duplicates import TRAIN_IMAGES, TrainImages, find_train_images

    given = Path(path)
    name = name or given.resolve().name
    folder, run_dir = given, None
    if not (given / "config.json").is_file() and not (given / "baseline.json").is_file():
        if (given / "model").is_dir():
            folder, run_dir = given / "model", given
    record = find_train_images(folder, run_dir)
    train_images = TrainImages.read(record) if record is not None else None
    if record is None and ((folder / "config.json").is_file()
                           or (folder / "baseline.json").is_file()):
        logger.warning("%s: no %s beside the model (an older checkpoint or a specialist): "
                       "how many evaluated images it saw in training is unknown", name,
                       TRAIN_IMAGES)
    if (folder / "baseline.json").is_file():
        from unihema.baselines import load_baseline  # written separately; only baselines need it

        model = load_baseline(folder)
        if device != "cpu" and hasattr(model, "to"):
            model.to(device)
        size = getattr(model, "image_size", None)
        return LoadedModel(name=name, path=given, kind="baseline", model=model,
                           tasks=list(model.tasks), image_size=int(size) if size else None,
                           upscale=bool(getattr(model, "upscale", False)),
                           crop_size=_baseline_crop_size(folder),
                           device=device if hasattr(model, "to") else "cpu",
                           train_images=train_images)
    if (folder / "config.json").is_file():
        from unihema.modeling.model import UniHema
        from unihema.modeling.reading import SOURCES, ReadingCascade
        from unihema.pipeline.processing import PROCESSOR_NAME, UniHemaProcessor

        if reading not in SOURCES:
            raise ValueError(f"reading must be 'model' or 'truth', got '{reading}'")
        model = UniHema.from_pretrained(folder).eval()
        if device != "cpu":
            model.to(device)
        meta = getattr(model, "checkpoint_meta", {}) or {}
        processor = UniHemaProcessor.from_pretrained(folder)  # from config.json if older
        if (folder / PROCESSOR_NAME).is_file():  # the preprocessing saved with the weights
            cfg = processor.config
            size, upscale, crop_size = cfg.image_size, cfg.upscale, cfg.crop_size
        else:  # an older checkpoint: what its config.json (or the run's config) says
            size = meta.get("image_size") or (_run_image_size(run_dir) if run_dir else None)
            upscale = bool(meta.get("upscale", False))
            crop_size = int(meta.get("crop_size", 0) or 0)
        return LoadedModel(name=name, path=given, kind="unihema", model=model,
                           tasks=list(model.config.tasks),
                           image_size=int(size) if size else None, upscale=upscale,
                           crop_size=crop_size, device=device, train_images=train_images,
                           cascade=ReadingCascade(model, source=reading,
                                                  processor=processor))
    raise FileNotFoundError(
        f"'{given}' is not a model folder: expected a unihema checkpoint (config.json + "
        f"model.safetensors), a run folder holding model/ (e.g. runs/demo) or a baseline "
        f"folder (baseline.json)")


def model_names(paths: Sequence[Union[str, Path]]) -> List[str]:
    """Report names: each folder's name (the run folder's for a checkpoint folder called
    ``model``, as in ``runs/demo/model``); ``<parent>/<name>`` where names collide, then
    ``#2``, ``#3``... if they still do."""
    resolved = [Path(p).resolve() for p in paths]
    resolved = [p.parent if p.name == "model" and p.parent.name else p for p in resolved]
    names = [p.name for p in resolved]
    names = [f"{p.parent.name}/{p.name}" if names.count(n) > 1 else n
             for p, n in zip(resolved, names)]
    out: List[str] = []
    for n in names:
        if n == "meta":  # the reserved top-level key of results.json
            n = "meta_model"
        k, base = 2, n
        while n in out:
            n, k = f"{base}#{k}", k + 1
        out.append(n)
    return out


def _baseline_crop_size(folder: Path) -> int:
    """``data.crop_size`` a specialist was trained with (its ``baseline.json``), 0 if none."""
    try:
        train = json.loads((folder / "baseline.json").read_text()).get("train") or {}
    except (OSError, ValueError, AttributeError):
        return 0
    return int(train.get("crop_size", 0) or 0)



__all__ = ["LoadedModel", "load_model", "model_names"]
