"""The visual trunk: a torchvision ResNet returning C2..C5, plus a transformer over tokens.

:class:`ResNetTrunk` keeps torchvision's module names (``conv1``, ``bn1``, ``layer1`` ..
``layer4``), so a torchvision state dict loads into it unchanged, while its width is
configurable (``width=16`` gives a 4x narrower network for tiny CPU configs).

:class:`VisualEncoder` projects C2..C5 to ``d`` channels, runs a transformer encoder over the
tokens of the configured levels (2-D sine positions + a level embedding, padding masked) and
rebuilds a top-down pyramid P2..P5, all ``[B, d, H/s, W/s]`` with strides 4, 8, 16, 32.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.ops import FrozenBatchNorm2d

logger = logging.getLogger(__name__)

LAYOUTS = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
           50: (Bottleneck, (3, 4, 6, 3)), 101: (Bottleneck, (3, 4, 23, 3))}
STRIDES = {"C2": 4, "C3": 8, "C4": 16, "C5": 32}
#: ImageNet statistics: torchvision weights expect them, and they are a fine default otherwise.
PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)


#: the quantile of an image's pixels taken as its white (background) level
WHITE_QUANTILE = 0.95
#: at most this many pixels per image enter the quantile (an even subsample of larger images)
WHITE_SAMPLE = 65536


def white_balance(images: torch.Tensor, pixel_mask: torch.Tensor,
                  q: float = WHITE_QUANTILE) -> torch.Tensor:
    """Per-image white balance: ``images [B, 3, H, W]`` in [0, 1] -> the same with each
    channel divided by its ``q``-quantile over the item's real pixels (``pixel_mask [B, H, W]``,
    padding excluded and left at 0), clamped to [0, 1].

    A blood smear's brightest pixels are the background, which should be white: dividing by
    its level removes the illuminant and camera colour cast of an instrument, leaving the
    stain's own colours. The level is floored at 0.05 so a dark image is not blown up.
    """
    out = torch.empty_like(images)
    for i in range(images.shape[0]):
        m = pixel_mask[i].bool()
        px = images[i][:, m].float()  # [3, N]
        if px.shape[1] == 0:
            out[i] = images[i]
            continue
        if px.shape[1] > WHITE_SAMPLE:
            px = px[:, :: -(-px.shape[1] // WHITE_SAMPLE)]
        level = torch.quantile(px, q, dim=1).clamp_min(0.05).to(images.dtype)
        out[i] = (images[i] / level.view(3, 1, 1)).clamp(0.0, 1.0) * m
    return out


class SizeSplitBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm with two sets of running statistics, one for small inputs (single-cell crops)
    and one for large ones (fields), and one shared affine transform.

    A mixture trains on crop batches and field batches in turn; one set of running statistics
    averages the two kinds of image and fits neither at evaluation (measured on the demo data
    after 300 steps of detection + classification: recomputing the statistics on crops alone
    lifts white-cell macro-F1 from 0.33 to 0.48). The owner sets :attr:`small` before each
    forward (:class:`ResNetTrunk` does, from the input size). The large-input statistics are
    BatchNorm's own ``running_mean`` / ``running_var``, so torchvision state dicts load as they
    are; the small-input ones (``small_running_mean``, ``small_running_var``,
    ``small_num_batches_tracked``) start as a copy of them (:meth:`copy_stats_to_small`).
    """

    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.small = False
        self.register_buffer("small_running_mean", torch.zeros(num_features))
        self.register_buffer("small_running_var", torch.ones(num_features))
        self.register_buffer("small_num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def copy_stats_to_small(self) -> None:
        with torch.no_grad():
            self.small_running_mean.copy_(self.running_mean)
            self.small_running_var.copy_(self.running_var)
            self.small_num_batches_tracked.copy_(self.num_batches_tracked)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.small:
            return super().forward(x)
        self._check_input_dim(x)
        factor = self.momentum if self.momentum is not None else 0.0
        if self.training and self.track_running_stats:
            self.small_num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as BatchNorm does
                factor = 1.0 / float(self.small_num_batches_tracked)
        return F.batch_norm(x, self.small_running_mean, self.small_running_var, self.weight,
                            self.bias, self.training or not self.track_running_stats, factor,
                            self.eps)


def norm_factory(kind: str) -> Callable[[int], nn.Module]:
    """``batch`` (trainable BN), ``split_batch`` (trainable BN with separate running statistics
    for small and large inputs, :class:`SizeSplitBatchNorm2d`), ``frozen_batch`` (fixed
    statistics, for fine-tuning pretrained weights with small batches) or ``group`` (batch-size
    independent)."""
    if kind == "batch":
        return nn.BatchNorm2d
    if kind == "split_batch":
        return SizeSplitBatchNorm2d
    if kind == "frozen_batch":
        return FrozenBatchNorm2d
    if kind == "group":
        return lambda c: nn.GroupNorm(max(1, min(32, c // 8)), c)
    raise ValueError(f"unknown norm '{kind}'; valid: batch, split_batch, frozen_batch, group")


def read_resnet_state(path: str | Path, option: str) -> Dict[str, torch.Tensor]:
    """A local torchvision ResNet state dict (``.pth`` / ``.pt`` read with ``weights_only``, or
    ``.safetensors``; a ``{"state_dict": ...}`` wrapper is unwrapped) without its classifier
    (``fc.*``). ``option`` names the setting that gave the path, for the error message."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{option}: '{path}' does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        # weights_only refuses arbitrary pickled objects: tensors and containers only
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


class ResNetTrunk(nn.Module):
    """ResNet-{18,34,50,101} with a configurable base width; returns C1 (stem) and C2..C5.

    Output channels: :attr:`channels` (``{"C1": w, "C2": w*e, ...}`` with ``e = 1`` for basic
    blocks and ``4`` for bottlenecks). With ``norm="split_batch"``, an input whose longer side
    is at most ``small_side`` pixels uses the small-input BatchNorm statistics.
    """

    def __init__(self, *, depth: int = 50, width: int = 64, norm: str = "batch",
                 small_side: int = 128) -> None:
        super().__init__()
        self.small_side = int(small_side)
        if depth not in LAYOUTS:
            raise ValueError(f"ResNet depth {depth} is not one of {sorted(LAYOUTS)}")
        block, layers = LAYOUTS[depth]
        norm_layer = norm_factory(norm)
        self._norm_layer = norm_layer
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0], 1)
        self.layer2 = self._make_layer(block, width * 2, layers[1], 2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], 2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], 2)
        e = block.expansion
        self.channels = {"C1": width, "C2": width * e, "C3": width * 2 * e,
                         "C4": width * 4 * e, "C5": width * 8 * e}
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # a plain list (not registered as submodules): the norms whose statistics follow the
        # input size, collected once instead of on every forward
        self._split_norms = [m for m in self.modules() if isinstance(m, SizeSplitBatchNorm2d)]

    def _make_layer(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        # torchvision's layout and names, so its state dicts load
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                self._norm_layer(planes * block.expansion),
            )
        mods = [block(self.inplanes, planes, stride, downsample, norm_layer=self._norm_layer)]
        self.inplanes = planes * block.expansion
        mods += [block(self.inplanes, planes, norm_layer=self._norm_layer)
                 for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x: torch.Tensor, small: Optional[torch.Tensor] = None
                ) -> Dict[str, torch.Tensor]:
        """``x``: normalised images ``[B, 3, H, W]`` -> ``{"C1": [B, c, H/2, W/2], ...,
        "C5": [B, c, H/32, W/32]}``.

        ``small [B]`` (bool): which items are small images (crops) for split BatchNorm; default
        from the padded size, ``max(H, W) <= small_side``. A batch that mixes both kinds (a crop
        padded beside a field) runs as two sub-batches, each with its own statistics.
        """
        if small is None or not self._split_norms:
            return self._forward(x, max(x.shape[-2:]) <= self.small_side)
        if bool(small.all()) or not bool(small.any()):
            return self._forward(x, bool(small.all()))
        groups = [small.nonzero()[:, 0], (~small).nonzero()[:, 0]]
        parts = [self._forward(x[g], flag) for g, flag in zip(groups, (True, False))]
        back = torch.cat(groups).argsort()
        return {k: torch.cat([p[k] for p in parts])[back] for k in parts[0]}

    def _forward(self, x: torch.Tensor, small: bool) -> Dict[str, torch.Tensor]:
        for m in self._split_norms:
            m.small = small
        c1 = self.relu(self.bn1(self.conv1(x)))
        c2 = self.layer1(self.maxpool(c1))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return {"C1": c1, "C2": c2, "C3": c3, "C4": c4, "C5": c5}

    def load_torchvision(self, path: str | Path) -> None:
        """Load a torchvision ResNet state dict (``.pth``/``.pt`` or ``.safetensors``).

        The classifier (``fc.*``) is dropped; any other missing or unexpected key is an error
        listing the keys (a silently half-loaded backbone wastes a training run).
        """
        path = Path(path)
        state = read_resnet_state(path, "backbone.pretrained")
        try:
            result = self.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shape mismatches: another depth or width
            raise ValueError(f"{path}: not a matching torchvision ResNet state dict for "
                             f"this trunk ({type(self).__name__}, channels {self.channels}): "
                             f"{str(exc).splitlines()[1].strip()} ...") from None
        # FrozenBatchNorm2d has no num_batches_tracked; that key is harmless to skip
        unexpected = [k for k in result.unexpected_keys if not k.endswith("num_batches_tracked")]
        missing = [k for k in result.missing_keys if ".small_" not in k and
                   not k.startswith("small_")]
        for m in self._split_norms:
            m.copy_stats_to_small()
        if missing or unexpected:
            raise ValueError(
                f"{path}: not a matching torchvision ResNet state dict; missing "
                f"{missing[:8]}{'...' if len(missing) > 8 else ''}, "
                f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
            )
        logger.info("loaded backbone weights from %s", path)


def sine_positions(h: int, w: int, d: int, device: torch.device) -> torch.Tensor:
    """2-D sine/cosine position codes ``[h*w, d]`` (DETR style, coordinates normalised to 1)."""
    if d % 4:
        raise ValueError(f"d_model must be a multiple of 4 for 2-D positions, got {d}")
    q = d // 4
    freq = 1.0 / (10000 ** (torch.arange(q, device=device, dtype=torch.float32) / q))
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h * 2 * math.pi
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w * 2 * math.pi
    py = ys[:, None] * freq[None]
    px = xs[:, None] * freq[None]
    pos = torch.cat([
        py.sin()[:, None].expand(h, w, q), py.cos()[:, None].expand(h, w, q),
        px.sin()[None].expand(h, w, q), px.cos()[None].expand(h, w, q),
    ], dim=-1)
    return pos.reshape(h * w, d)


def downsample_mask(pixel_mask: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``[B, H, W]`` bool (True = real pixel) -> ``[B, h, w]`` bool at a feature stride."""
    return F.interpolate(pixel_mask[:, None].float(), size=tuple(size), mode="nearest")[:, 0] > 0


class VisualEncoder(nn.Module):
    """Projection to ``d``, transformer over multi-scale tokens, top-down pyramid P2..P5."""

    def __init__(
        self,
        *,
        in_channels: Dict[str, int],
        d_model: int,
        layers: int,
        heads: int,
        ffn: int,
        levels: Sequence[str],
    ) -> None:
        super().__init__()
        unknown = [lv for lv in levels if lv not in STRIDES or lv == "C2"]
        if unknown:
            raise ValueError(f"encoder levels {unknown} invalid; choose from C3, C4, C5")
        self.levels = list(levels)
        self.proj = nn.ModuleDict({
            lv: nn.Sequential(nn.Conv2d(in_channels[lv], d_model, 1),
                              nn.GroupNorm(max(1, min(32, d_model // 8)), d_model))
            for lv in STRIDES
        })
        self.level_embed = nn.Parameter(torch.zeros(len(self.levels), d_model))
        self.encoder = None
        if layers > 0:
            layer = nn.TransformerEncoderLayer(d_model, heads, ffn, dropout=0.0,
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.smooth = nn.ModuleDict({
            lv: nn.Conv2d(d_model, d_model, 3, padding=1) for lv in ("C2", "C3", "C4")
        })

    def forward(self, feats: Dict[str, torch.Tensor], pixel_mask: torch.Tensor,
                dense: bool = True) -> Dict[str, torch.Tensor]:
        """``feats`` from :class:`ResNetTrunk`, ``pixel_mask`` ``[B, H, W]`` ->
        ``{"P2": [B, d, H/4, W/4], ..., "P5": [B, d, H/32, W/32]}``; ``dense=False`` stops
        at P3 (the stride-4 map is the costliest level and only per-pixel heads read it)."""
        x = {lv: self.proj[lv](feats[lv]) for lv in STRIDES if dense or lv != "C2"}
        if self.encoder is not None:
            tokens, pads, shapes = [], [], []
            for i, lv in enumerate(self.levels):
                b, d, h, w = x[lv].shape
                pos = sine_positions(h, w, d, x[lv].device) + self.level_embed[i]
                tokens.append(x[lv].flatten(2).transpose(1, 2) + pos)
                pads.append(~downsample_mask(pixel_mask, (h, w)).flatten(1))
                shapes.append((h, w))
            out = self.encoder(torch.cat(tokens, 1), src_key_padding_mask=torch.cat(pads, 1))
            start = 0
            for lv, (h, w) in zip(self.levels, shapes):
                n = h * w
                x[lv] = out[:, start:start + n].transpose(1, 2).reshape(-1, out.shape[-1], h, w)
                start += n
        p = {"P5": x["C5"]}
        for lv, up in (("C4", "P5"), ("C3", "P4"), ("C2", "P3"))[:None if dense else 2]:
            top = F.interpolate(p[up], size=x[lv].shape[-2:], mode="nearest")
            p["P" + lv[1]] = self.smooth[lv](x[lv] + top)
        return p
