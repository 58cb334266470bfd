"""Text heads (mlm, vqa): the shared T5 decoder writes the answer.

The decoder (``fused.decoder``, a :class:`~unihema.modeling.types.Decoder`) cross-attends to a
memory of ``[joint ; resampled fused visual queries ; fused P5 ; fused prompt tokens]`` built
by the model, so the answer depends on the image: the same question over two different images
can, and after training does, get different answers.
"""

from __future__ import annotations

from typing import Any, Dict, List

import torch

from unihema.modeling.heads import HEADS, TaskHead
from unihema.modeling.types import Fused, HeadOutput


class TextHead(TaskHead):
    """Generation through the model's text decoder; no parameters of its own."""

    dense = False  # reads the decoder memory only

    @classmethod
    def from_config(cls, cfg) -> "TextHead":
        return cls()

    def forward(self, fused: Fused, batch) -> HeadOutput:
        """``text_loss`` of ``batch["targets"]`` in training, else ``text`` + ``confidence``."""
        if self.training:
            return HeadOutput(text_loss=fused.decoder.loss(batch["targets"]))
        texts, probs = fused.decoder.generate(with_probs=True)
        return HeadOutput(text=texts, confidence=probs)

    def loss(self, outputs: HeadOutput, batch) -> Dict[str, torch.Tensor]:
        return {f"loss_{self.task}_ce": outputs.text_loss}

    @torch.no_grad()
    def postprocess(self, outputs: HeadOutput, batch) -> List[Dict[str, Any]]:
        """``[{"text": str, "confidence": the answer's sequence probability}]``."""
        return [{"text": t, "confidence": p} for t, p in zip(outputs.text, outputs.confidence)]


@HEADS.register("mlm")
class MaskedReportHead(TextHead):
    task = "mlm"


@HEADS.register("vqa")
class AnswerHead(TextHead):
    task = "vqa"
