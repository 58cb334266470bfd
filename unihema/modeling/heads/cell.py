"""Heads over the global joint embedding: classification and morphology.

classify: the joint image-prompt embedding ``[B, d]`` is compared with the text embeddings of
the item's candidate labels (cosine x learned scale), so each item may carry its own candidate
list. Probabilities are a softmax divided by a temperature fitted on held-out data
(:meth:`ClassifyHead.calibrate`), stored in the checkpoint.

morphology: one linear layer per attribute of ``vocab.ATTRIBUTES`` over the joint embedding;
the descriptive sentence is written by the shared text decoder (``loss_morphology_text``).

Cross-supervision (``data.cross_supervision``): both heads read the same crops, so each can
train on the other's batches when the items carry its targets (:meth:`TaskHead.cross_loss`):
a morphology batch of white cells then trains their type, a classify batch the attributes of
its white cells. Same loss names and weights as in the head's own batches.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from unihema.data.vocab import ATTRIBUTES
from unihema.modeling.heads import HEADS, TaskHead, batch_class_names
from unihema.modeling.losses import ragged_cross_entropy
from unihema.modeling.types import Fused, HeadOutput


@HEADS.register("classify")
class ClassifyHead(TaskHead):
    task = "classify"
    dense = False  # reads the joint embedding (and the decoder memory)

    def __init__(self, *, d_model: int, d_text: int, embed_dim: int) -> None:
        super().__init__()
        self.image_proj = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(),
                                        nn.Linear(d_model, embed_dim))
        self.class_proj = nn.Linear(d_text, embed_dim)
        # [1], not a 0-dim scalar: DeepSpeed ZeRO-3 cannot partition 0-dim parameters
        self.log_scale = nn.Parameter(torch.tensor([math.log(10.0)]))
        # fitted after training on held-out data; 1.0 = uncalibrated
        self.register_buffer("temperature", torch.tensor(1.0))

    @classmethod
    def from_config(cls, cfg) -> "ClassifyHead":
        return cls(d_model=cfg.d_model, d_text=cfg.text.d_model, embed_dim=cfg.heads.embed_dim)

    def forward(self, fused: Fused, batch) -> HeadOutput:
        """``logits``: per item, ``[n_candidates]`` over its ``batch["classes"]``."""
        names_l = batch_class_names(batch)
        c = F.normalize(self.class_proj(fused.embed_phrases(names_l)), dim=-1)
        v = F.normalize(self.image_proj(fused.joint), dim=-1)
        sims = v @ c.t() * self.log_scale.exp()  # [B, N]
        index = {n: i for i, n in enumerate(names_l)}
        logits = [sims[b, [index[n] for n in cl]] for b, cl in enumerate(batch["classes"])]
        return HeadOutput(logits=logits, embedding=v)

    def class_embeddings(self, text_model, names: Sequence[str]) -> torch.Tensor:
        """``[N, embed_dim]`` unit-norm embeddings of class names, the space of
        :attr:`HeadOutput.embedding` (any name: the text side is open-vocabulary)."""
        return F.normalize(self.class_proj(text_model.embed_phrases(list(names))), dim=-1)

    def loss(self, outputs: HeadOutput, batch) -> Dict[str, torch.Tensor]:
        return {"loss_classify_ce": ragged_cross_entropy(outputs.logits,
                                                         batch["labels"].tolist())}

    def cross_loss(self, fused, batch) -> Dict[str, torch.Tensor]:
        """Cross-entropy over the items with a label (``label >= 0``); ``{}`` when none has."""
        keep = [i for i, y in enumerate(batch["labels"].tolist()) if y >= 0]
        if not keep:
            return {}
        sub = {"classes": [batch["classes"][i] for i in keep],
               "labels": batch["labels"][keep]}
        return self.loss(self(fused.select(keep), sub), sub)

    @torch.no_grad()
    def postprocess(self, outputs, batch) -> List[Dict[str, Any]]:
        out = []
        for b, lg in enumerate(outputs.logits):
            probs = (lg / self.temperature).softmax(-1)
            item = {"probs": probs, "label": int(probs.argmax()), "logits": lg.detach()}
            if outputs.embedding is not None:
                item["embedding"] = outputs.embedding[b].detach()
            out.append(item)
        return out

    @torch.no_grad()
    def calibrate(self, logits: Sequence[torch.Tensor], labels: Sequence[int]) -> float:
        """Fit the softmax temperature minimising held-out NLL (grid + refinement)."""
        if not logits:
            return float(self.temperature)

        def nll(t: float) -> float:
            return float(sum(F.cross_entropy(lg[None] / t, torch.tensor([y]))
                             for lg, y in zip(logits, labels)) / len(logits))

        grid = [0.25 * 1.25 ** i for i in range(20)]
        best = min(grid, key=nll)
        for step in (0.05, 0.01):
            cands = [best * (1 + step * k) for k in range(-4, 5)]
            best = min(cands, key=nll)
        self.temperature.fill_(best)
        return best


@HEADS.register("morphology")
class MorphologyHead(TaskHead):
    task = "morphology"
    dense = False  # reads the joint embedding (and the decoder memory)

    def __init__(self, *, d_model: int) -> None:
        super().__init__()
        self.attributes = list(ATTRIBUTES)
        self.hidden = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU())
        self.out = nn.ModuleDict({a: nn.Linear(d_model, len(ATTRIBUTES[a]))
                                  for a in self.attributes})

    @classmethod
    def from_config(cls, cfg) -> "MorphologyHead":
        return cls(d_model=cfg.d_model)

    def attribute_logits(self, joint: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``joint [B, d]`` -> ``{attribute: logits [B, n_values]}``."""
        h = self.hidden(joint)
        return {a: self.out[a](h) for a in self.attributes}

    def forward(self, fused: Fused, batch) -> HeadOutput:
        """``attributes`` always; the sentence's ``text_loss`` in training, its ``text`` and
        ``confidence`` at inference (the decoder of ``fused``)."""
        out = HeadOutput(attributes=self.attribute_logits(fused.joint))
        if self.training:
            out.text_loss = fused.decoder.loss(batch["targets"])
        else:
            out.text, out.confidence = fused.decoder.generate(with_probs=True)
        return out

    @torch.no_grad()
    def predict_attributes(self, fused: Fused, with_probs: bool = False):
        """The most likely value of every attribute, per item, without writing the sentence;
        with ``with_probs`` each item is ``(values, {attribute: its value's probability})``."""
        probs = {a: lg.softmax(-1) for a, lg in self.attribute_logits(fused.joint).items()}
        best = {a: p.max(-1) for a, p in probs.items()}
        out = []
        for b in range(fused.joint.shape[0]):
            values = {a: ATTRIBUTES[a][int(best[a].indices[b])] for a in self.attributes}
            out.append((values, {a: float(best[a].values[b]) for a in self.attributes})
                       if with_probs else values)
        return out

    def _attribute_loss(self, pred: Dict[str, torch.Tensor], attributes
                        ) -> Optional[torch.Tensor]:
        """Mean over attributes of the cross-entropy over the items that state it, or
        ``None`` when no item states any attribute."""
        terms = []
        for a, logits in pred.items():
            values = ATTRIBUTES[a]
            target = torch.tensor([values.index(attrs[a]) if a in attrs else -1
                                   for attrs in attributes], dtype=torch.long,
                                  device=logits.device)
            if (target >= 0).any():
                terms.append(F.cross_entropy(logits, target, ignore_index=-1))
        return torch.stack(terms).mean() if terms else None

    def loss(self, outputs: HeadOutput, batch) -> Dict[str, torch.Tensor]:
        pred = outputs.attributes
        attr = self._attribute_loss(pred, batch["attributes"])
        if attr is None:
            attr = pred[self.attributes[0]].sum() * 0.0
        return {"loss_morphology_attr": attr, "loss_morphology_text": outputs.text_loss}

    def cross_loss(self, fused, batch) -> Dict[str, torch.Tensor]:
        """The attribute term over the items that state attributes (a classify batch has no
        sentence to train); ``{}`` when none does."""
        attr = self._attribute_loss(self.attribute_logits(fused.joint),
                                    batch["attributes"])
        return {} if attr is None else {"loss_morphology_attr": attr}

    @torch.no_grad()
    def postprocess(self, outputs, batch) -> List[Dict[str, Any]]:
        n = len(batch["keys"])
        preds = []
        for b in range(n):
            probs = {a: lg[b].softmax(-1) for a, lg in outputs.attributes.items()}
            attrs = {a: ATTRIBUTES[a][int(p.argmax())] for a, p in probs.items()}
            item = {"attributes": attrs,
                    "attribute_confidence": {a: float(p.max()) for a, p in probs.items()}}
            if outputs.text is not None:
                item["text"] = outputs.text[b]
                item["confidence"] = outputs.confidence[b]
            preds.append(item)
        return preds
