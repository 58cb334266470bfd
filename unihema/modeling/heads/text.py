"""Text heads (mlm, vqa): the shared T5 decoder writes the answer.

The decoder cross-attends to a memory of ``[resampled fused visual queries ; fused prompt
tokens]`` built by the model (``fused["memory"]``), so the answer depends on the image: the
same question over two different images can, and after training does, get different answers.
"""

from __future__ import annotations

from typing import Any, Dict, List

import torch

from unihema.modeling.heads import HEADS, TaskHead


class TextHead(TaskHead):
    """Generation through the model's text decoder; no parameters of its own."""

    dense = False  # reads the decoder memory only

    @classmethod
    def from_config(cls, cfg) -> "TextHead":
        return cls()

    def forward(self, fused, batch) -> Dict[str, Any]:
        if self.training:
            return {"pred_text_loss": fused["decoder_loss"](batch["targets"])}
        texts, probs = fused["generate"](with_probs=True)
        return {"pred_text": texts, "pred_confidence": probs}

    def loss(self, outputs, batch) -> Dict[str, torch.Tensor]:
        return {f"loss_{self.task}_ce": outputs["pred_text_loss"]}

    @torch.no_grad()
    def postprocess(self, outputs, batch) -> List[Dict[str, Any]]:
        """``[{"text": str, "confidence": the answer's sequence probability}]``."""
        return [{"text": t, "confidence": p}
                for t, p in zip(outputs["pred_text"], outputs["pred_confidence"])]


@HEADS.register("mlm")
class MaskedReportHead(TextHead):
    task = "mlm"


@HEADS.register("vqa")
class AnswerHead(TextHead):
    task = "vqa"
