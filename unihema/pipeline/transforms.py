"""Augmentations that move boxes and masks with the pixels.

Conventions (every function here):

* ``image``: ``uint8 [3, H, W]`` torch tensor (the public entry points also take a numpy
  ``uint8 [H, W, 3]`` array and hand back the same kind).
* ``boxes``: ``float32 [N, 4]`` absolute pixel ``x0, y0, x1, y1`` on pixel edges (a box
  covering pixel columns 2..4 is ``x0=2, x1=5``).
* ``mask``: ``int64 [H, W]`` class or instance values, or ``None``. Masks are only ever moved or
  resampled with nearest neighbour, never blended, so their values stay exact.

Geometry (flips, 90-degree rotations, resizing, cropping, blur and colour jitter) is done by
``torchvision.transforms.v2.functional`` on ``tv_tensors.BoundingBoxes`` / ``tv_tensors.Mask``,
so pixels, boxes and masks share one tested implementation. Stain jitter (perturbation of the
stain concentrations in optical-density space, Tellez et al. 2018) is written here.

:class:`Augment` draws every random number from the ``np.random.Generator`` it is given, so one
seed gives one augmentation; :func:`build_augmentation` builds it from an ``AugmentConfig``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from unihema.config.schema import AugmentConfig

ArrayLike = Union[np.ndarray, torch.Tensor]

# Ruifrok & Johnston (2001) stain optical-density vectors, one row per stain: haematoxylin,
# eosin, DAB. Romanowsky stains (Giemsa, Wright, May-Gruenwald) pair a blue thiazine with eosin
# and separate well enough on the same axes for a *perturbation*, which needs no exact unmixing.
_RGB_FROM_HED = torch.tensor(
    [[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=torch.float64
)
_RGB_FROM_HED = _RGB_FROM_HED / _RGB_FROM_HED.norm(dim=1, keepdim=True)
_HED_FROM_RGB = torch.linalg.inv(_RGB_FROM_HED)
RGB_FROM_HED = _RGB_FROM_HED.float()  #: ``[3 stains, 3 RGB]`` unit OD vectors
HED_FROM_RGB = _HED_FROM_RGB.float()  #: its inverse, ``[3 RGB, 3 stains]``


# ----------------------------------------------------------------------------- geometry
def _wrap(image: torch.Tensor, boxes: torch.Tensor, mask: Optional[torch.Tensor]):
    h, w = image.shape[-2:]
    bb = tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(int(h), int(w)))
    return tv_tensors.Image(image), bb, None if mask is None else tv_tensors.Mask(mask)


def _unwrap(image, boxes, mask) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    plain = torch.Tensor
    out_mask = None if mask is None else mask.as_subclass(plain)
    return image.as_subclass(plain), boxes.as_subclass(plain).float(), out_mask


def _apply(fn, image, boxes, mask, **kwargs):
    image, boxes, mask = _wrap(image, boxes, mask)
    image, boxes = fn(image, **kwargs), fn(boxes, **kwargs)
    mask = None if mask is None else fn(mask, **kwargs)
    return _unwrap(image, boxes, mask)


def hflip(image: torch.Tensor, boxes: torch.Tensor, mask: Optional[torch.Tensor]):
    """Mirror left-right: ``x -> W - x``. Returns ``(image, boxes, mask)``."""
    return _apply(F.horizontal_flip, image, boxes, mask)


def vflip(image: torch.Tensor, boxes: torch.Tensor, mask: Optional[torch.Tensor]):
    """Mirror top-bottom: ``y -> H - y``. Returns ``(image, boxes, mask)``."""
    return _apply(F.vertical_flip, image, boxes, mask)


def rot90(image: torch.Tensor, boxes: torch.Tensor, mask: Optional[torch.Tensor], k: int):
    """Rotate by ``k * 90`` degrees counter-clockwise; ``[H, W]`` becomes ``[W, H]`` for odd k.

    torchvision takes an exact ``torch.rot90`` path for these angles (no resampling); boxes are
    rounded to 1e-3 px to remove the cos/sin error of its box rotation.
    """
    k = int(k) % 4
    if k == 0:
        return image, boxes, mask
    image, boxes, mask = _apply(F.rotate, image, boxes, mask, angle=90.0 * k, expand=True)
    return image, torch.round(boxes * 1000) / 1000, mask


def resize(
    image: torch.Tensor, boxes: torch.Tensor, mask: Optional[torch.Tensor], size: Sequence[int]
):
    """Resample to ``size = (H', W')``: bilinear with antialiasing for the image, nearest
    (centre-aligned, like the bilinear grid) for the mask; boxes scale per axis."""
    size = [max(1, int(size[0])), max(1, int(size[1]))]
    if tuple(size) == tuple(image.shape[-2:]):
        return image, boxes, mask
    img, bb, m = _wrap(image, boxes, mask)
    img = F.resize(img, size, interpolation=InterpolationMode.BILINEAR, antialias=True)
    bb = F.resize(bb, size)
    if m is not None:
        m = F.resize(m, size, interpolation=InterpolationMode.NEAREST_EXACT)
    img, boxes, m = _unwrap(img, bb, m)
    # float32 ratios can push an edge box a hair past the canvas (23.000002 > 23)
    return img, _clip(boxes, *size), m


def crop(
    image: torch.Tensor,
    boxes: torch.Tensor,
    mask: Optional[torch.Tensor],
    top: int,
    left: int,
    height: int,
    width: int,
    min_visibility: float = 0.0,
):
    """Cut the window ``[top:top+height, left:left+width]``; boxes are clipped to it.

    A box is kept when its clipped area is positive and at least ``min_visibility`` of its area
    before the crop. Returns ``(image, boxes, mask, keep)`` with ``keep`` the ``int64`` indices
    of the surviving input boxes, so per-box labels and attributes can follow.
    """
    before = _area(boxes)
    image, boxes, mask = _apply(
        F.crop, image, boxes, mask, top=int(top), left=int(left), height=int(height),
        width=int(width),
    )
    boxes = _clip(boxes, height, width)
    after = _area(boxes)
    visible = after / before.clamp(min=1e-12)
    keep = torch.nonzero((after > 0) & (visible >= min_visibility - 1e-6)).flatten()
    return image, boxes[keep], mask, keep.numpy().astype(np.int64)


def _clip(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    limit = torch.tensor([width, height, width, height], dtype=boxes.dtype)
    return torch.minimum(boxes.clamp(min=0), limit)


def _area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


# ----------------------------------------------------------------------------- photometry
def color_jitter(
    image: torch.Tensor,
    brightness: float = 1.0,
    contrast: float = 1.0,
    saturation: float = 1.0,
    hue: float = 0.0,
    order: Sequence[int] = (0, 1, 2, 3),
) -> torch.Tensor:
    """Brightness, contrast, saturation factors (1 = unchanged) and a hue shift in fractions of
    the colour wheel (``[-0.5, 0.5]``), applied in ``order``; ``uint8 [3, H, W]`` in and out."""
    ops = (
        lambda x: F.adjust_brightness(x, brightness),
        lambda x: F.adjust_contrast(x, contrast),
        lambda x: F.adjust_saturation(x, saturation),
        lambda x: F.adjust_hue(x, hue) if hue else x,
    )
    for i in order:
        image = ops[int(i)](image)
    return image


def stain_jitter(
    image: torch.Tensor, alpha: Sequence[float], beta: Sequence[float]
) -> torch.Tensor:
    """Perturb stain concentrations: ``c' = alpha * c + beta`` per stain (H, E, D).

    RGB -> optical density ``od = -ln((I + 1) / 256)`` -> concentrations ``c = od @ HED_FROM_RGB``
    -> perturb -> back. ``alpha = 1, beta = 0`` reproduces the image exactly. ``uint8 [3, H, W]``
    in and out.
    """
    a = torch.as_tensor(alpha, dtype=torch.float32).view(3, 1, 1)
    b = torch.as_tensor(beta, dtype=torch.float32).view(3, 1, 1)
    od = -torch.log((image.float() + 1.0) / 256.0)
    conc = torch.einsum("chw,cs->shw", od, HED_FROM_RGB)
    od = torch.einsum("shw,sc->chw", conc * a + b, RGB_FROM_HED)
    return (256.0 * torch.exp(-od) - 1.0).clamp(0, 255).round().to(torch.uint8)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Isotropic Gaussian blur with a kernel of ``2 * ceil(3 sigma) + 1`` taps (capped so the
    reflect padding fits small images)."""
    h, w = image.shape[-2:]
    k = 2 * math.ceil(3 * sigma) + 1
    k = min(k, 2 * min(h, w) - 1)
    if k < 3:
        return image
    return F.gaussian_blur(image, kernel_size=[k, k], sigma=[float(sigma), float(sigma)])


# ----------------------------------------------------------------------------- entry points
def _to_tensors(image: ArrayLike, boxes, mask):
    """Any supported input -> (uint8 [3,H,W], float32 [N,4], int64 [H,W] | None, was_numpy)."""
    was_numpy = isinstance(image, np.ndarray)
    if was_numpy:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"numpy image must be [H, W, 3], got {image.shape}")
        image = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).contiguous()
    if image.ndim != 3 or image.shape[0] != 3 or image.dtype != torch.uint8:
        raise ValueError(f"image must be uint8 [3, H, W], got {image.dtype} {tuple(image.shape)}")
    boxes = torch.zeros((0, 4)) if boxes is None else torch.as_tensor(boxes, dtype=torch.float32)
    boxes = boxes.reshape(-1, 4)
    if mask is not None:
        if isinstance(mask, np.ndarray):
            mask = torch.from_numpy(mask.astype(np.int64, copy=True))
        mask = mask.to(torch.int64)
        if tuple(mask.shape) != tuple(image.shape[-2:]):
            raise ValueError(f"mask {tuple(mask.shape)} does not match image {tuple(image.shape)}")
    return image, boxes, mask, was_numpy


def _from_tensors(image, boxes, mask, was_numpy):
    if not was_numpy:
        return image, boxes, mask
    return (
        image.permute(1, 2, 0).contiguous().numpy(),
        boxes.numpy().astype(np.float32),
        None if mask is None else mask.numpy(),
    )


def resize_longest(image: ArrayLike, boxes, mask, size: int):
    """Rescale so the longer side equals ``size``, keeping the aspect ratio.

    Returns ``(image, boxes, mask, scale)`` in the kind of the input (numpy ``[H, W, 3]`` or
    torch ``[3, H, W]``); ``scale = size / max(H, W)``. The shorter side is rounded, so boxes
    scale by the exact per-axis ratio (within half a pixel of ``scale``).
    """
    image, boxes, mask, was_numpy = _to_tensors(image, boxes, mask)
    h, w = image.shape[-2:]
    scale = float(size) / max(h, w)
    image, boxes, mask = resize(image, boxes, mask, (round(h * scale), round(w * scale)))
    return (*_from_tensors(image, boxes, mask, was_numpy), scale)


@dataclass
class AugmentResult:
    """What :meth:`Augment.apply` returns: the moved targets and the random rescale used."""

    image: ArrayLike
    boxes: ArrayLike
    mask: Optional[ArrayLike]
    keep: np.ndarray
    scale: float


class Augment:
    """Random geometric then photometric augmentation, driven by an ``AugmentConfig``.

    Order: horizontal flip, vertical flip, rotation by a random multiple of 90 degrees, random
    rescale by ``s ~ U(scale)``, random crop (each side ``U(crop_min, 1)`` of the image), then a
    cap crop to ``max_size`` per side when given (one crop window does both, so a box's
    visibility is measured once); then colour jitter, stain jitter and blur, which never move
    anything.

    Args:
        cfg: the augmentation settings.
        max_size: if set, the output is at most this many pixels per side (a random window is
            cut when rescaling makes the image larger).
    """

    def __init__(self, cfg: AugmentConfig, *, max_size: Optional[int] = None) -> None:
        for name in ("hflip", "vflip", "rot90", "crop", "blur", "min_visibility"):
            v = getattr(cfg, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"augment.{name} must lie in [0, 1], got {v}")
        lo, hi = cfg.scale
        if not 0 < lo <= hi:
            raise ValueError(
                f"augment.scale must be (min, max) with 0 < min <= max, got {cfg.scale}"
            )
        if not 0 < cfg.crop_min <= 1:
            raise ValueError(f"augment.crop_min must lie in (0, 1], got {cfg.crop_min}")
        if cfg.color_jitter < 0 or cfg.stain_jitter < 0 or not 0 <= cfg.hue <= 0.5:
            raise ValueError(
                f"augment.color_jitter and stain_jitter must be >= 0 and hue in [0, 0.5]; got "
                f"{cfg.color_jitter}, {cfg.stain_jitter}, {cfg.hue}"
            )
        s_lo, s_hi = cfg.blur_sigma
        if not 0 < s_lo <= s_hi:
            raise ValueError(
                f"augment.blur_sigma must be (min, max) with 0 < min <= max, got {cfg.blur_sigma}"
            )
        self.cfg = cfg
        self.max_size = max_size

    def __call__(self, image: ArrayLike, boxes, mask, rng: np.random.Generator):
        """Augment; returns ``(image, boxes, mask, keep_idx)`` in the kind of the input.

        ``keep_idx`` (``int64 [K]``) indexes the input boxes that survive, in order; the
        returned boxes are ``boxes[keep_idx]`` moved into the output image.
        """
        r = self.apply(image, boxes, mask, rng)
        return r.image, r.boxes, r.mask, r.keep

    def apply(self, image: ArrayLike, boxes, mask, rng: np.random.Generator) -> AugmentResult:
        """Like :meth:`__call__`, also reporting the random rescale factor."""
        cfg = self.cfg
        image, boxes, mask, was_numpy = _to_tensors(image, boxes, mask)
        h, w = image.shape[-2:]
        # Boxes outside the canvas would get visibility from area that does not exist.
        boxes = _clip(boxes, h, w)
        keep = np.arange(boxes.shape[0], dtype=np.int64)

        if rng.random() < cfg.hflip:
            image, boxes, mask = hflip(image, boxes, mask)
        if rng.random() < cfg.vflip:
            image, boxes, mask = vflip(image, boxes, mask)
        if rng.random() < cfg.rot90:
            image, boxes, mask = rot90(image, boxes, mask, int(rng.integers(1, 4)))

        scale = 1.0
        lo, hi = cfg.scale
        if (lo, hi) != (1.0, 1.0):
            scale = float(rng.uniform(lo, hi))
            h, w = image.shape[-2:]
            image, boxes, mask = resize(image, boxes, mask, (round(h * scale), round(w * scale)))

        h, w = image.shape[-2:]
        ch, cw = h, w
        if rng.random() < cfg.crop:
            ch = max(1, round(h * rng.uniform(cfg.crop_min, 1.0)))
            cw = max(1, round(w * rng.uniform(cfg.crop_min, 1.0)))
        if self.max_size is not None:
            ch, cw = min(ch, self.max_size), min(cw, self.max_size)
        if (ch, cw) != (h, w):
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            image, boxes, mask, kept = crop(
                image, boxes, mask, top, left, ch, cw, cfg.min_visibility
            )
            keep = keep[kept]

        if cfg.color_jitter > 0 or cfg.hue > 0:
            j = cfg.color_jitter
            b, c, s = rng.uniform(max(0.0, 1 - j), 1 + j, size=3)
            hue = float(rng.uniform(-cfg.hue, cfg.hue))
            image = color_jitter(image, float(b), float(c), float(s), hue, rng.permutation(4))
        if cfg.stain_jitter > 0:
            sigma = cfg.stain_jitter
            alpha = rng.uniform(1 - sigma, 1 + sigma, size=3)
            beta = rng.uniform(-sigma, sigma, size=3)
            image = stain_jitter(image, alpha, beta)
        if rng.random() < cfg.blur:
            image = gaussian_blur(image, float(rng.uniform(*cfg.blur_sigma)))

        image, boxes, mask = _from_tensors(image, boxes, mask, was_numpy)
        return AugmentResult(image, boxes, mask, keep, scale)


def build_augmentation(cfg: AugmentConfig, *, max_size: Optional[int] = None) -> Augment:
    """The :class:`Augment` of a config (see its docstring for the order of operations)."""
    return Augment(cfg, max_size=max_size)
