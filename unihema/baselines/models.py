"""Single-task specialist models: the baselines the unified model is measured against.

Each specialist is an ``nn.Module`` for one task with a fixed class list, trained on the same
batches as the unified model (:func:`unihema.data.collate.collate`) and answering in exactly the
unified model's per-item formats, so the same evaluators score both:

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

import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import safetensors.torch
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from unihema import __version__
from unihema.utils import atomic_save, atomic_write_text, sha256_file
from unihema.modeling.backbone import PIXEL_MEAN, PIXEL_STD, norm_factory, read_resnet_state
from unihema.modeling.weights import WeightsError, kwargs_problems, load_into, read_json
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


# --------------------------------------------------------------------------- detectors
class _TorchvisionDetector(Specialist):
    """A torchvision detector fed the unpadded region of each item, without resizing.

    torchvision's ``GeneralizedRCNNTransform`` normalises (ImageNet mean/std) and would resize
    every image to ``min_size``; its resize is replaced by the identity, so the network sees the
    images at the size the data pipeline made them and boxes stay in batch pixels both ways.
    ``label_offset`` is 1 for models whose class 0 is background (Faster R-CNN), else 0.
    """

    kind = "detector"
    task = "detect"
    label_offset = 0

    def _build(self, net: nn.Module, backbone_weights: str) -> None:
        from torchvision.models.detection.transform import GeneralizedRCNNTransform

        class _NoResize(GeneralizedRCNNTransform):
            def resize(self, image, target=None):
                return image, target

        net.transform = _NoResize(self.image_size, self.image_size, list(PIXEL_MEAN),
                                  list(PIXEL_STD), size_divisible=32)
        if backbone_weights:
            load_resnet_weights(net.backbone.body, backbone_weights)
        self.net = convert_norms(net, self.norm)

    def _inputs(self, batch: Mapping[str, Any], targets: bool):
        images, tgts = [], []
        for i in range(batch["images"].shape[0]):
            h, w = valid_size(batch["pixel_mask"][i])
            images.append(batch["images"][i, :, :h, :w])
            if not targets:
                continue
            own = self.own_indices(batch["classes"][i], item_key(batch, i))
            boxes = batch["boxes"][i].float().reshape(-1, 4).clone()
            box_classes = batch["box_classes"][i].long()
            labels = own.to(box_classes.device)[box_classes] + self.label_offset
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
            # torchvision rejects zero-area boxes (a crop can leave a sliver on the border)
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            tgts.append({"boxes": boxes[keep], "labels": labels.to(boxes.device)[keep]})
        return images, tgts

    def loss(self, batch: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """torchvision's loss terms, as ``loss_detect_<term>`` (unweighted, summed to train)."""
        self._check(batch)
        if not self.training:
            raise RuntimeError(f"{self.arch}.loss() needs training mode (torchvision detectors "
                               f"return detections in eval mode); call .train() first")
        images, targets = self._inputs(batch, targets=True)
        losses = self.net(images, targets)
        return {f"loss_detect_{k.removeprefix('loss_')}": v for k, v in losses.items()}

    def _predict(self, batch: Mapping[str, Any]) -> List[Dict[str, Any]]:
        images, _ = self._inputs(batch, targets=False)
        results = []
        for i, det in enumerate(self.net(images)):
            own = self.own_indices(batch["classes"][i], item_key(batch, i))
            to_prompt = torch.full((len(self.classes),), -1, dtype=torch.long)
            to_prompt[own] = torch.arange(len(own))
            cls = to_prompt[det["labels"].cpu() - self.label_offset]
            keep = cls >= 0
            results.append({"boxes": det["boxes"].cpu()[keep], "scores": det["scores"].cpu()[keep],
                            "classes": cls[keep]})
        return results


@BASELINES.register("fcos_resnet18")
class FCOSDetector(_TorchvisionDetector):
    """torchvision FCOS on a ResNet + FPN (P3-P7, 256 channels), random init.

    Args:
        classes: the class names (output channel k = ``classes[k]``).
        image_size: longer image side it is trained and evaluated at.
        backbone: torchvision ResNet name (``resnet18``, ``resnet34``, ``resnet50``).
        norm: backbone normalisation (:data:`NORMS`); the FCOS head always uses GroupNorm.
        score_thresh: detections below it are dropped (low, for AP).
        nms_thresh: IoU of the per-class NMS.
        detections_per_img: detections kept per image (fields hold up to ~100 cells).
        backbone_weights: local torchvision ResNet state dict to start from ('' = random).
    """

    arch = "fcos_resnet18"

    def __init__(self, *, classes: Sequence[str], image_size: int, backbone: str = "resnet18",
                 norm: str = "group", score_thresh: float = 0.05, nms_thresh: float = 0.6,
                 detections_per_img: int = 300, backbone_weights: str = "") -> None:
        super().__init__(classes=classes, image_size=image_size, norm=norm, backbone=backbone,
                         score_thresh=score_thresh, nms_thresh=nms_thresh,
                         detections_per_img=detections_per_img)
        from torchvision.models.detection import FCOS
        from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
        from torchvision.ops.feature_pyramid_network import LastLevelP6P7

        body = resnet_fpn_backbone(backbone_name=backbone, weights=None, norm_layer=nn.BatchNorm2d,
                                   trainable_layers=5, returned_layers=[2, 3, 4],
                                   extra_blocks=LastLevelP6P7(256, 256))
        net = FCOS(body, num_classes=len(self.classes), min_size=self.image_size,
                   max_size=self.image_size, score_thresh=score_thresh, nms_thresh=nms_thresh,
                   detections_per_img=detections_per_img)
        self._build(net, backbone_weights)


@BASELINES.register("fasterrcnn_resnet18")
class FasterRCNNDetector(_TorchvisionDetector):
    """torchvision Faster R-CNN on a ResNet + FPN (P2-P6), random init; class 0 = background.

    Args: as :class:`FCOSDetector`, plus ``anchor_sizes`` (one size per pyramid level, pixels;
    blood cells are 10-100 px at the usual image sizes, smaller than COCO's 32-512 defaults).
    """

    arch = "fasterrcnn_resnet18"
    label_offset = 1

    def __init__(self, *, classes: Sequence[str], image_size: int, backbone: str = "resnet18",
                 norm: str = "group", score_thresh: float = 0.05, nms_thresh: float = 0.5,
                 detections_per_img: int = 300,
                 anchor_sizes: Sequence[int] = (16, 32, 64, 128, 256),
                 backbone_weights: str = "") -> None:
        super().__init__(classes=classes, image_size=image_size, norm=norm, backbone=backbone,
                         score_thresh=score_thresh, nms_thresh=nms_thresh,
                         detections_per_img=detections_per_img, anchor_sizes=list(anchor_sizes))
        from torchvision.models.detection import FasterRCNN
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

        if len(anchor_sizes) != 5:
            raise ValueError(f"anchor_sizes needs one size per level P2-P6 (5), got "
                             f"{list(anchor_sizes)}")
        body = resnet_fpn_backbone(backbone_name=backbone, weights=None, norm_layer=nn.BatchNorm2d,
                                   trainable_layers=5)
        anchors = AnchorGenerator(tuple((int(s),) for s in anchor_sizes), ((0.5, 1.0, 2.0),) * 5)
        net = FasterRCNN(body, num_classes=len(self.classes) + 1, min_size=self.image_size,
                         max_size=self.image_size, rpn_anchor_generator=anchors,
                         box_score_thresh=score_thresh, box_nms_thresh=nms_thresh,
                         box_detections_per_img=detections_per_img)
        self._build(net, backbone_weights)


# --------------------------------------------------------------------------- segmenter
@BASELINES.register("unet_resnet18")
class UNetSegmenter(Specialist):
    """segmentation_models_pytorch U-Net, random init; cross-entropy + Dice over its classes.

    Output channel k = ``classes[k]`` ("background" first by convention). Padding (mask -1) is
    ignored by both losses.

    Args:
        classes, image_size, norm, backbone_weights: as :class:`FCOSDetector`.
        encoder: smp encoder name (``resnet18``, ``resnet34``, ...).
    """

    kind = "segmenter"
    arch = "unet_resnet18"
    task = "segment"

    def __init__(self, *, classes: Sequence[str], image_size: int, encoder: str = "resnet18",
                 norm: str = "batch", backbone_weights: str = "") -> None:
        super().__init__(classes=classes, image_size=image_size, norm=norm, encoder=encoder)
        import segmentation_models_pytorch as smp

        self.net = smp.Unet(encoder_name=encoder, encoder_weights=None,
                            classes=len(self.classes))
        if backbone_weights:
            load_resnet_weights(self.net.encoder, backbone_weights)
        convert_norms(self.net, norm)
        self.dice = smp.losses.DiceLoss(mode="multiclass", ignore_index=-1)

    def _targets(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """``batch["masks"]`` (indices into each item's prompted classes) -> own indices."""
        masks = batch["masks"]
        out = torch.full_like(masks, -1)
        for i, names in enumerate(batch["classes"]):
            own = self.own_indices(names, item_key(batch, i)).to(masks.device)
            valid = masks[i] >= 0
            out[i][valid] = own[masks[i][valid]]
        return out

    def loss(self, batch: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """``loss_segment_ce`` (mean over labelled pixels) and ``loss_segment_dice``."""
        self._check(batch)
        logits = self.net(self.normalize(batch["images"]))
        target = self._targets(batch)
        if not (target >= 0).any():  # nothing labelled: a zero that still reaches the graph
            zero = logits.sum() * 0.0
            return {"loss_segment_ce": zero, "loss_segment_dice": zero}
        return {"loss_segment_ce": F.cross_entropy(logits, target, ignore_index=-1),
                "loss_segment_dice": self.dice(logits, target)}

    def _predict(self, batch: Mapping[str, Any]) -> List[Dict[str, Any]]:
        logits = self.net(self.normalize(batch["images"])).cpu()
        out = []
        for i, names in enumerate(batch["classes"]):
            own = self.own_indices(names, item_key(batch, i))
            out.append({"mask": logits[i, own].argmax(0)})
        return out


# --------------------------------------------------------------------------- classifier
@BASELINES.register("resnet18_classifier")
class ResNetClassifier(Specialist):
    """torchvision ResNet, random init; average pool over the real pixels only, then linear.

    The pool is weighted by the fraction of real (unpadded) pixels under each feature cell, so a
    crop's prediction does not depend on the sizes of the other crops in its batch.

    Args:
        classes, image_size, norm, backbone_weights: as :class:`FCOSDetector`.
        backbone: torchvision ResNet name (``resnet18``, ``resnet34``, ``resnet50``).
    """

    kind = "classifier"
    arch = "resnet18_classifier"
    task = "classify"

    def __init__(self, *, classes: Sequence[str], image_size: int, backbone: str = "resnet18",
                 norm: str = "batch", backbone_weights: str = "") -> None:
        super().__init__(classes=classes, image_size=image_size, norm=norm, backbone=backbone)
        import torchvision

        if backbone not in ("resnet18", "resnet34", "resnet50", "resnet101"):
            raise ValueError(f"backbone must be resnet18/34/50/101, got '{backbone}'")
        net = getattr(torchvision.models, backbone)(weights=None)
        if backbone_weights:
            load_resnet_weights(net, backbone_weights)
        net.fc = nn.Linear(net.fc.in_features, len(self.classes))
        self.net = convert_norms(net, norm)

    def logits(self, images: torch.Tensor, pixel_mask: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` images in [0, 1] and ``[B, H, W]`` mask -> ``[B, C]`` logits."""
        n = self.net
        x = n.maxpool(n.relu(n.bn1(n.conv1(self.normalize(images)))))
        x = n.layer4(n.layer3(n.layer2(n.layer1(x))))
        w = F.adaptive_avg_pool2d(pixel_mask[:, None].float(), x.shape[-2:])
        pooled = (x * w).sum((2, 3)) / w.sum((2, 3)).clamp_min(1e-6)
        return n.fc(pooled)

    def _prompted_logits(self, batch: Mapping[str, Any]) -> Tuple[torch.Tensor, List]:
        logits = self.logits(batch["images"], batch["pixel_mask"])
        owns = [self.own_indices(c, item_key(batch, i)) for i, c in enumerate(batch["classes"])]
        allowed = torch.zeros_like(logits, dtype=torch.bool)
        for i, own in enumerate(owns):
            allowed[i, own.to(logits.device)] = True
        return logits.masked_fill(~allowed, float("-inf")), owns

    def loss(self, batch: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
        """``loss_classify_ce``: cross-entropy over each item's prompted classes."""
        self._check(batch)
        logits, owns = self._prompted_logits(batch)
        target = torch.stack([own[int(y)] for own, y in zip(owns, batch["labels"])])
        return {"loss_classify_ce": F.cross_entropy(logits, target.to(logits.device))}

    def _predict(self, batch: Mapping[str, Any]) -> List[Dict[str, Any]]:
        logits, owns = self._prompted_logits(batch)
        probs = logits.softmax(-1).cpu()
        out = []
        for i, own in enumerate(owns):
            p = probs[i, own]
            out.append({"probs": p, "label": int(p.argmax())})
        return out


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
