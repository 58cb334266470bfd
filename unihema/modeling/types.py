"""The typed contracts of one forward pass: ``Batch`` in, ``Fused`` between the trunk and the
heads, ``HeadOutput`` out of a head.

    batch = Batch.from_dict(collate(items))        # or any Mapping of collate's keys
    fused = model.encode(batch.images, batch.pixel_mask, batch.prompts)
    out = model.heads[batch.task](fused, batch)     # HeadOutput
    losses = model.heads[batch.task].loss(out, batch)

All three are dataclasses that also read as read-only mappings under the keys the code used
before they existed (``batch["boxes"]``, ``fused["joint"]``, ``out["pred_logits"]``), so
dict-based callers keep working.

The T5 decoder is a :class:`Decoder` bound to one batch's memory, carried by :class:`Fused`
and handed to the heads with it: ``fused.decoder.loss(targets)`` (training) and
``fused.decoder.generate(with_probs=True)`` (inference); ``fused.embed_phrases(names)`` gives
the class-name embeddings of the open-vocabulary heads.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import (Any, Dict, Iterator, List, Mapping, Optional, Protocol, Sequence, Tuple,
                    Union, runtime_checkable)

import torch

from unihema.pipeline.collate import slice_batch

#: batch keys stored as :class:`Batch` fields; every other key goes to ``Batch.fields``
_BATCH_FIELDS = ("task", "images", "pixel_mask", "prompts")


@dataclass(frozen=True)
class Batch(Mapping[str, Any]):
    """A one-task batch as :func:`unihema.pipeline.collate.collate` makes it.

    Attributes:
        task: the task of every item.
        images: ``float32 [B, 3, H, W]`` in [0, 1], items at the top left, zeros elsewhere.
        pixel_mask: ``bool [B, H, W]``, True on real pixels.
        prompts: ``B`` prompt strings.
        item_keys: ``B`` item keys, ``batch["keys"]`` (``[]`` when the caller has none; not
            named ``keys``, which is the mapping's ``keys()``).
        fields: the task-specific values (``labels [B]``, ``boxes``, ``classes``, ``masks``,
            ``targets``, ``cross_tasks`` ...; see the collate module), tensors with the batch
            on their first axis or lists of length ``B``.

    Reads as a mapping over all of them: ``batch["labels"]``, ``"masks" in batch``,
    ``batch.get("questions")``, ``dict(batch)``.
    """

    task: str
    images: torch.Tensor
    pixel_mask: torch.Tensor
    prompts: List[str]
    item_keys: List[Any] = field(default_factory=list)
    fields: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Union["Batch", Mapping[str, Any]]) -> "Batch":
        """A ``Batch`` of a collated dict (a ``Batch`` is returned as it is).

        Raises:
            KeyError: naming the missing keys among ``task``, ``images``, ``pixel_mask``,
                ``prompts``.
        """
        if isinstance(d, Batch):
            return d
        missing = [k for k in _BATCH_FIELDS if k not in d]
        if missing:
            raise KeyError(f"a batch needs {missing} (collate's keys); it has {sorted(d)}")
        return cls(task=d["task"], images=d["images"], pixel_mask=d["pixel_mask"],
                   prompts=list(d["prompts"]), item_keys=list(d.get("keys") or []),
                   fields={k: v for k, v in d.items() if k not in _BATCH_FIELDS + ("keys",)})

    def __len__(self) -> int:  # Mapping: the number of keys (use ``size`` for items)
        return len(self._as_dict())

    @property
    def size(self) -> int:
        """The number of items ``B``."""
        return int(self.images.shape[0])

    def _as_dict(self) -> Dict[str, Any]:
        out = {"task": self.task, "images": self.images, "pixel_mask": self.pixel_mask,
               "prompts": self.prompts}
        if self.item_keys:
            out["keys"] = self.item_keys
        out.update(self.fields)
        return out

    def __getitem__(self, key: str) -> Any:
        if key in _BATCH_FIELDS:
            return getattr(self, key)
        if key == "keys" and self.item_keys:
            return self.item_keys
        if key in self.fields:
            return self.fields[key]
        raise KeyError(f"the {self.task} batch has no '{key}'; it has {sorted(self)}")

    def __iter__(self) -> Iterator[str]:
        return iter(self._as_dict())

    def replace(self, **changes: Any) -> "Batch":
        """A copy with fields (or task-specific keys) replaced."""
        if "keys" in changes:
            changes["item_keys"] = changes.pop("keys")
        own = {k: v for k, v in changes.items() if k in _BATCH_FIELDS + ("item_keys",)}
        extra = {k: v for k, v in changes.items() if k not in own}
        return dataclasses.replace(self, **own, fields={**self.fields, **extra})

    def slice(self, start: int, stop: int) -> "Batch":
        """Items ``start:stop`` (every tensor and per-item list sliced on its first axis)."""
        return Batch.from_dict(slice_batch(self._as_dict(), start, stop))


@dataclass
class Decoder:
    """The T5 decoder (:class:`~unihema.modeling.text.TextModel`) bound to one batch's memory.

    Attributes:
        text: the model's text model (encoder, decoder, tokenizer).
        memory: ``[B, M, d_text]`` what the decoder cross-attends to.
        mask: ``[B, M]`` 1 on real memory tokens.
        ids: ``[B, M]`` the token id of each memory position the decoder may copy, -1 else.
        offsets: ``[B, M]`` the positions of the reading's tokens (copy in order) or None.
        max_new_tokens, num_beams: generation settings (``model.text``, ``model.heads``).
    """

    text: Any
    memory: torch.Tensor
    mask: torch.Tensor
    ids: torch.Tensor
    offsets: Optional[torch.Tensor] = None
    max_new_tokens: Optional[int] = None
    num_beams: int = 1

    def loss(self, targets: Sequence[str]) -> torch.Tensor:
        """Scalar cross-entropy of writing ``targets`` (one string per item)."""
        return self.text.decoder_loss(self.memory, self.mask, list(targets), self.ids,
                                      self.offsets)

    def generate(self, with_probs: bool = False
                 ) -> Union[List[str], Tuple[List[str], List[float]]]:
        """One answer per item (and, ``with_probs``, its sequence probability)."""
        return self.text.generate(self.memory, self.mask, max_new_tokens=self.max_new_tokens,
                                  num_beams=self.num_beams, memory_ids=self.ids,
                                  memory_offsets=self.offsets, with_probs=with_probs)


#: Fused's mapping keys that read the decoder (the dict the model returned before ``Fused``)
_DECODER_KEYS = {"memory": "memory", "memory_mask": "mask", "memory_ids": "ids",
                 "memory_offsets": "offsets"}


@dataclass
class Fused:
    """The fused representation of ``B`` (image, prompt) pairs that every head reads.

    Attributes:
        maps: fused pyramid ``{"P2".."P5": [B, d, h, w]}`` and the stem ``"C1"`` (P2 and C1
            only when the head is dense: ``TaskHead.dense``).
        joint: ``[B, d]`` the global image-prompt embedding.
        queries: ``[B, Q, d]`` the resampled queries.
        text: ``[B, T, d]`` the prompt tokens after fusion.
        text_model: the model's :class:`~unihema.modeling.text.TextModel` (class-name
            embeddings).
        decoder: the T5 decoder bound to this batch's memory (None for a view without one).

    A head that reads only the global embedding can be given a view
    ``Fused(joint=..., text_model=model.text)``. ``fused["joint"]``, ``fused["P2"]``,
    ``fused["memory"]``, ``fused["embed_phrases"]`` read as the dict of earlier versions.
    """

    joint: torch.Tensor
    text_model: Any
    maps: Dict[str, torch.Tensor] = field(default_factory=dict)
    queries: Optional[torch.Tensor] = None
    text: Optional[torch.Tensor] = None
    decoder: Optional[Decoder] = None

    def embed_phrases(self, phrases: List[str]) -> torch.Tensor:
        """``[N, d_text]`` embeddings of class names (see ``TextModel.embed_phrases``)."""
        return self.text_model.embed_phrases(phrases)

    def select(self, rows: Sequence[int]) -> "Fused":
        """The global view (``joint``, class-name embeddings) of some items only."""
        return Fused(joint=self.joint[list(rows)], text_model=self.text_model)

    def take(self, rows: Sequence[int]) -> "Fused":
        """Every field (maps, queries, the decoder's memory) of some items only."""
        idx = list(rows)

        def cut(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            return None if t is None else t[idx]

        dec = self.decoder
        if dec is not None:
            dec = dataclasses.replace(dec, memory=dec.memory[idx], mask=dec.mask[idx],
                                      ids=dec.ids[idx], offsets=cut(dec.offsets))
        return Fused(joint=self.joint[idx], text_model=self.text_model,
                     maps={k: v[idx] for k, v in self.maps.items()}, queries=cut(self.queries),
                     text=cut(self.text), decoder=dec)

    def __getitem__(self, key: str) -> Any:
        if key in self.maps:
            return self.maps[key]
        if key in ("joint", "queries", "text") and getattr(self, key) is not None:
            return getattr(self, key)
        if key == "embed_phrases":
            return self.embed_phrases
        if self.decoder is not None:
            if key in _DECODER_KEYS:
                return getattr(self.decoder, _DECODER_KEYS[key])
            if key in ("decoder_loss", "generate"):
                return self.decoder.loss if key == "decoder_loss" else self.decoder.generate
        raise KeyError(f"the fused representation has no '{key}'")

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except KeyError:
            return False
        return True


@dataclass
class HeadOutput:
    """What a head computes from :class:`Fused` (the fields its task uses; the rest None).

    Attributes:
        logits: classify: ``B`` tensors ``[n_candidates_b]``; detect: ``[B, K, h, w]`` class
            heat-map logits; segment: ``[B, K, H, W]``.
        ltrb: detect: ``[B, 4, h, w]`` distances (pixels) from each cell to the box edges.
        class_names: detect, segment: the batch's ``K`` class names (the logits' channels).
        attributes: morphology: ``{attribute: logits [B, n_values]}``.
        text_loss: text heads in training: the decoder's scalar cross-entropy.
        text, confidence: text heads at inference: ``B`` strings and sequence probabilities.
        embedding: classify: ``[B, embed_dim]`` unit-norm image embeddings, the space in which
            the head compares an item with its candidate class names (open-set scores, patient
            encoders and retrieval read it).

    Reads as a mapping under the ``pred_*`` names (``out["pred_logits"]``, ``"pred_text" in
    out``) and ``class_names``, over the fields that are set.
    """

    logits: Any = None
    ltrb: Optional[torch.Tensor] = None
    class_names: Optional[List[str]] = None
    attributes: Optional[Dict[str, torch.Tensor]] = None
    text_loss: Optional[torch.Tensor] = None
    text: Optional[List[str]] = None
    confidence: Optional[List[float]] = None
    embedding: Optional[torch.Tensor] = None

    @staticmethod
    def _field(key: str) -> str:
        return key[len("pred_"):] if key.startswith("pred_") else key

    def _keys(self) -> List[str]:
        return [("" if f.name == "class_names" else "pred_") + f.name
                for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(f"the head output has no '{key}'; it has {self._keys()}")
        return getattr(self, self._field(key))

    def __contains__(self, key: object) -> bool:
        return key in self._keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default


@dataclass
class ForwardPass:
    """What one training forward computed, handed to the trainer's objectives.

    Attributes:
        batch: every item drawn, the trunk-only ones (reserved by ``Objective.trunk_items``)
            at its end.
        main: the items that took the full path (trunk, fusion, head).
        visual: :meth:`UniHema.encode_image` of ``batch``: ``"pooled"`` and the pyramid of
            ``main``, ``"trunk_pooled" [k, c5]`` of the ``k`` trunk-only items.
        fused: the fused representation of ``main``.
        output: the batch's head's output on ``main``.
    """

    batch: Batch
    main: Batch
    visual: Dict[str, torch.Tensor]
    fused: Fused
    output: HeadOutput


@runtime_checkable
class Objective(Protocol):
    """A training objective added to a forward pass (:mod:`unihema.engine.objectives`)."""

    def trunk_items(self, batch: Batch) -> int:
        """How many items at the end of ``batch`` go through the trunk only (0: none)."""
        ...

    def __call__(self, model: Any, done: ForwardPass) -> Dict[str, torch.Tensor]:
        """Its raw loss terms ``{"loss_<task>_<term>": scalar}`` from the pass ``done``."""
        ...


__all__ = ["Batch", "Decoder", "ForwardPass", "Fused", "HeadOutput", "Objective"]
