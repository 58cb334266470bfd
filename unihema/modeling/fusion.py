"""The Hema-Former: hierarchical fusion of visual and prompt tokens.

Three levels, each feeding the next:

1. **token** (:class:`BiCrossBlock`): at each configured pyramid level, coarse to fine, visual
   tokens attend to prompt tokens and prompt tokens attend to visual tokens (bidirectional
   cross-attention), each with a learned, tanh-gated residual so that a freshly initialised
   fusion starts close to the identity. The prompt tokens carry what they gathered at a coarse
   level down to the finer ones.
2. **query** (:class:`QueryResampler`): a fixed set of learned queries attends to the fused
   visual tokens of every level and to the fused prompt, giving ``[B, Q, d]`` summaries (the
   memory of the text decoder, the input of the classification and morphology heads).
3. **global**: the pooled fused image (P5 and P4), the pooled queries and the pooled prompt
   make one joint embedding ``[B, d]``.

Shapes: visual maps ``[B, d, h, w]``, prompt tokens ``[B, T, d]`` with ``text_mask [B, T]``
(True = real token), ``pixel_mask [B, H, W]`` (True = real pixel).
"""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch
from torch import nn

from unihema.modeling.backbone import downsample_mask, sine_positions


class GatedCrossAttention(nn.Module):
    """``x + tanh(gate) * Attn(norm(x), ctx)`` followed by a gated feed-forward."""

    def __init__(self, d: int, heads: int, gate_init: float = 0.25) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(d)
        self.norm_kv = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm_ff = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        # [1], not a 0-dim scalar: DeepSpeed ZeRO-3 cannot partition 0-dim parameters
        self.gate_attn = nn.Parameter(torch.tensor([gate_init]))
        self.gate_ff = nn.Parameter(torch.tensor([gate_init]))

    def forward(self, x: torch.Tensor, ctx: torch.Tensor, ctx_pad: torch.Tensor | None
                ) -> torch.Tensor:
        """``x [B, N, d]`` attends to ``ctx [B, M, d]``; ``ctx_pad [B, M]`` True = ignore."""
        kv = self.norm_kv(ctx)
        a, _ = self.attn(self.norm_q(x), kv, kv, key_padding_mask=ctx_pad, need_weights=False)
        x = x + torch.tanh(self.gate_attn) * a
        return x + torch.tanh(self.gate_ff) * self.ff(self.norm_ff(x))


class BiCrossBlock(nn.Module):
    """One token-level fusion block: vision <- prompt, then prompt <- vision."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.v_from_t = GatedCrossAttention(d, heads)
        self.t_from_v = GatedCrossAttention(d, heads)

    def forward(self, v, t, v_pad, t_pad) -> Tuple[torch.Tensor, torch.Tensor]:
        v = self.v_from_t(v, t, t_pad)
        t = self.t_from_v(t, v, v_pad)
        return v, t


class QueryResampler(nn.Module):
    """Learned queries attending to fused visual tokens and to the prompt (level 2)."""

    def __init__(self, d: int, heads: int, queries: int, layers: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(queries, d) * 0.02)
        self.layers = nn.ModuleList()
        for _ in range(layers):
            self.layers.append(nn.ModuleDict({
                "self": nn.MultiheadAttention(d, heads, batch_first=True),
                "norm_self": nn.LayerNorm(d),
                "vision": GatedCrossAttention(d, heads, gate_init=1.0),
                "text": GatedCrossAttention(d, heads, gate_init=1.0),
            }))

    def forward(self, v, v_pad, t, t_pad) -> torch.Tensor:
        q = self.queries[None].expand(v.shape[0], -1, -1)
        for layer in self.layers:
            n = layer["norm_self"](q)
            q = q + layer["self"](n, n, n, need_weights=False)[0]
            q = layer["vision"](q, v, v_pad)
            q = layer["text"](q, t, t_pad)
        return q


class HemaFormer(nn.Module):
    """Token-, query- and global-level fusion (see the module docstring)."""

    def __init__(
        self,
        *,
        d_model: int,
        heads: int,
        layers: int,
        levels: Sequence[str],
        queries: int,
        query_layers: int,
    ) -> None:
        super().__init__()
        # coarse to fine: the prompt gathers global context first, then detail
        self.levels = sorted(levels, key=lambda lv: -int(lv[1]))
        self.blocks = nn.ModuleDict({
            lv: nn.ModuleList(BiCrossBlock(d_model, heads) for _ in range(layers))
            for lv in self.levels
        })
        self.resampler = QueryResampler(d_model, heads, queries, query_layers)
        # pooled fused image (two levels) + pooled queries + pooled prompt
        self.joint = nn.Sequential(nn.LayerNorm(4 * d_model), nn.Linear(4 * d_model, d_model),
                                   nn.GELU(), nn.Linear(d_model, d_model))

    @staticmethod
    def masked_mean(fmap: torch.Tensor, pixel_mask: torch.Tensor) -> torch.Tensor:
        """Mean of ``[B, d, h, w]`` over real (unpadded) cells -> ``[B, d]``."""
        m = downsample_mask(pixel_mask, fmap.shape[-2:]).unsqueeze(1).to(fmap.dtype)
        return (fmap * m).sum((2, 3)) / m.sum((2, 3)).clamp(min=1)

    def forward(
        self,
        pyramid: Dict[str, torch.Tensor],
        pixel_mask: torch.Tensor,
        text: torch.Tensor,
        text_mask: torch.Tensor,
    ) -> Dict[str, torch.Tensor]:
        """Returns ``{"P2".."P5": fused maps [B, d, h, w], "text": [B, T, d],
        "queries": [B, Q, d], "joint": [B, d]}``."""
        out = dict(pyramid)
        t_pad = ~text_mask
        tokens, pads = [], []
        for lv in self.levels:
            key = "P" + lv[1]
            b, d, h, w = out[key].shape
            pos = sine_positions(h, w, d, out[key].device)
            v = out[key].flatten(2).transpose(1, 2)
            v_pad = ~downsample_mask(pixel_mask, (h, w)).flatten(1)
            for block in self.blocks[lv]:
                v, text = block(v + pos, text, v_pad, t_pad)
                v = v - pos
            out[key] = v.transpose(1, 2).reshape(b, d, h, w)
            tokens.append(v + pos)
            pads.append(v_pad)
        queries = self.resampler(torch.cat(tokens, 1), torch.cat(pads, 1), text, t_pad)
        m = text_mask.unsqueeze(-1).to(text.dtype)
        pooled_text = (text * m).sum(1) / m.sum(1).clamp(min=1)
        out["text"] = text
        out["queries"] = queries
        # a direct pooled-image path: early in training the queries attend almost uniformly
        # and their mean barely differs between images, which starves the global heads
        pooled = [self.masked_mean(out[k], pixel_mask) for k in ("P5", "P4")]
        out["joint"] = self.joint(torch.cat(pooled + [queries.mean(1), pooled_text], -1))
        return out
