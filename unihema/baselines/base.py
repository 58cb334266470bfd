"""Single-task specialist models: the baselines the unified model is measured against.

Each specialist is an ``nn.Module`` for one task with a fixed class list, trained on the same
batches as the unified model (:func:`unihema.pipeline.collate.collate`) and answering in
exactly the unified model's per-item formats, so the same evaluators score both:

==========  =========================  ====================================================
kind        arch (registry name)       model
==========  =========================  ====================================================
detector    ``fcos_resnet18``          torchvision FCOS, ResNet-18 + FPN (P3-P7)
detector    ``fasterrcnn_resnet18``    torchvision Faster R-CNN, ResNet-18 + FPN (P2-P6)
segmenter   ``unet_resnet18``          segmentation_models_pytorch U-Net, ResNet-18 encoder
classifier  ``resnet18_classifier``    torchvision ResNet-18, masked average pool + linear
==========  =========================  ====================================================

Common contract (:class:`Specialist`):

* keyword-only constructor ``cls(*, classes, image_size, **options)`` and
  ``cls.from_config(cfg, *, classes, **options)``; :attr:`Specialist.init_kwargs` holds the
  JSON-able arguments that rebuild it (``baseline.json``);
* ``.kind``, ``.arch``, ``.task``, ``.tasks == [task]``, ``.classes`` (its own class list, index
  = output channel), ``.image_size`` (longer side of the images it was trained at);
* ``loss(batch) -> {"loss_<task>_<term>": scalar}`` (the training loop sums the terms);
* ``predict(batch) -> list[dict]`` (no gradients, eval mode, mode restored afterwards):
  detect ``{"boxes" [K, 4] xyxy in batch pixels, "scores" [K], "classes" [K]}``, segment
  ``{"mask": int64 [H, W]}`` at the padded batch size, classify ``{"probs" [C_i], "label"}``,
  where every class index points into the item's *prompted* list ``batch["classes"][i]``.

Prompted names are mapped onto the specialist's own classes by name; a prompted name it does
not know raises :class:`UnknownClassError`. A prompt naming a subset of its classes restricts
the answer to that subset (detections of other classes are dropped, mask argmax and softmax run
over the prompted classes only), as the unified model does.

Images arrive as the data pipeline makes them: float ``[B, 3, H, W]`` in [0, 1], not normalised,
each item at the top left of a zero-padded canvas (``pixel_mask``). All specialists normalise
with the ImageNet mean and std, like the unified model. Normalisation layers (``norm``):
``batch`` (BatchNorm), ``group`` (GroupNorm, batch-size independent) or ``frozen_batch``;
defaults: ``group`` for the detectors (fields come 4 to a batch), ``batch`` for the segmenter and
the classifier (batches of 16 or more crops).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from unihema.modeling.backbone import PIXEL_MEAN, PIXEL_STD, norm_factory, read_resnet_state
from unihema.registry import Registry

logger = logging.getLogger(__name__)

#: kind -> task
KINDS: Dict[str, str] = {"detector": "detect", "segmenter": "segment", "classifier": "classify"}
#: kind -> arch used when none is named
DEFAULT_ARCH: Dict[str, str] = {"detector": "fcos_resnet18", "segmenter": "unet_resnet18",
                                "classifier": "resnet18_classifier"}
NORMS = ("batch", "group", "frozen_batch")

BASELINES: Registry[type] = Registry(
    "baseline model",
    signature="cls(*, classes: list[str], image_size: int, **options) -> Specialist with "
    ".kind, .task, .loss(batch) -> {loss_<task>_<term>: scalar}, .predict(batch) -> list[dict]",
)


class UnknownClassError(ValueError):
    """A batch prompts a class name the specialist was not trained on."""


# --------------------------------------------------------------------------- helpers
def convert_norms(module: nn.Module, kind: str) -> nn.Module:
    """Replace every ``BatchNorm2d`` of ``module`` (in place) by ``kind`` (see :data:`NORMS`).

    ``group`` copies the affine weights (``GroupNorm`` with ``max(1, min(32, c // 8))`` groups);
    ``frozen_batch`` copies weights and running statistics.
    """
    if kind not in NORMS:
        raise ValueError(f"unknown norm '{kind}'; valid: {', '.join(NORMS)}")
    if kind == "batch":
        return module
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            c = child.num_features
            if kind == "group":
                new: nn.Module = norm_factory("group")(c)
            else:
                new = FrozenBatchNorm2d(c, eps=child.eps)
                new.running_mean.copy_(child.running_mean)
                new.running_var.copy_(child.running_var)
            if child.affine:
                new.weight.data.copy_(child.weight.data)
                new.bias.data.copy_(child.bias.data)
            setattr(module, name, new)
        else:
            convert_norms(child, kind)
    return module


def load_resnet_weights(module: nn.Module, path: str) -> None:
    """Load a local torchvision ResNet state dict (``.pth`` / ``.safetensors``) into a module
    with torchvision's ResNet names (``conv1``, ``bn1``, ``layer1`` ..); ``fc.*`` is dropped and
    any other missing or unexpected key is an error naming the keys."""
    state = read_resnet_state(path, "backbone_weights")
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("fc.")]
    if missing or result.unexpected_keys:
        raise ValueError(f"{path}: not a torchvision ResNet state dict for this backbone; missing "
                         f"{missing[:8]}, unexpected {result.unexpected_keys[:8]}")
    logger.info("loaded backbone weights from %s", path)


def item_key(batch: Mapping[str, Any], i: int) -> Any:
    """``batch["keys"][i]`` for messages, or the index when the batch has no keys."""
    keys = batch.get("keys")
    return keys[i] if keys is not None and i < len(keys) else i


def valid_size(pixel_mask: torch.Tensor) -> Tuple[int, int]:
    """``(h, w)`` of the real pixels of one item's ``[H, W]`` mask (top-left anchored)."""
    return int(pixel_mask.any(1).sum()), int(pixel_mask.any(0).sum())


# --------------------------------------------------------------------------- base class
class Specialist(nn.Module):
    """Base of the single-task baselines (see the module docstring for the contract)."""

    kind = ""
    arch = ""
    task = ""

    def __init__(self, *, classes: Sequence[str], image_size: int, norm: str,
                 **options: Any) -> None:
        super().__init__()
        classes = [str(c) for c in classes]
        if not classes:
            raise ValueError(f"{self.arch}: the class list is empty")
        if len(set(classes)) != len(classes):
            raise ValueError(f"{self.arch}: duplicate class names in {classes}")
        if norm not in NORMS:
            raise ValueError(f"{self.arch}: unknown norm '{norm}'; valid: {', '.join(NORMS)}")
        self.classes: List[str] = classes
        self.tasks = [self.task]
        self.image_size = int(image_size)
        self.norm = norm
        # weights live in model.safetensors once trained, so a reload never needs the file
        self.init_kwargs: Dict[str, Any] = {"classes": classes, "image_size": self.image_size,
                                            "norm": norm, **options}
        self._index = {c: i for i, c in enumerate(classes)}
        self.register_buffer("pixel_mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), False)

    @classmethod
    def from_config(cls, cfg: Any, *, classes: Sequence[str], **options: Any) -> "Specialist":
        """From a root ``Config``: ``data.image_size``; ``options`` are the arch's own."""
        return cls(classes=classes, image_size=cfg.data.image_size, **options)

    def own_indices(self, names: Sequence[str], key: Any = "") -> torch.Tensor:
        """int64 ``[len(names)]``: the specialist's class index of each prompted name."""
        unknown = [n for n in names if n not in self._index]
        if unknown:
            raise UnknownClassError(
                f"{self.arch} ({self.task}): item {key!r} prompts {unknown}, which this "
                f"specialist was not trained on; its classes: {self.classes}")
        return torch.tensor([self._index[n] for n in names], dtype=torch.long)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.pixel_mean) / self.pixel_std

    def _check(self, batch: Mapping[str, Any]) -> None:
        if batch.get("task") != self.task:
            raise ValueError(f"{self.arch} is a {self.task} specialist; got a "
                             f"'{batch.get('task')}' batch")

    def loss(self, batch: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    def _predict(self, batch: Mapping[str, Any]) -> List[Dict[str, Any]]:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, batch: Mapping[str, Any]) -> List[Dict[str, Any]]:
        """Per-item predictions of a one-task batch in the unified model's formats."""
        self._check(batch)
        was_training = self.training
        self.eval()
        try:
            return self._predict(batch)
        finally:
            self.train(was_training)
