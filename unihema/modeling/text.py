"""The text stack: the SentencePiece tokenizer and a T5 encoder-decoder.

The T5 encoder reads prompts (``encode``) and class names (``embed_phrases``, the open
vocabulary of the detection, segmentation and classification heads). The T5 decoder writes
answers while cross-attending to a memory the caller builds, in the unified model
``[resampled fused visual tokens ; prompt tokens]``: the decoder never reads the prompt on its
own, so every generated answer is conditioned on the image (``decoder_loss`` / ``generate``).

Shapes: ``B`` batch, ``T`` prompt tokens, ``M`` memory tokens, ``L`` target tokens, ``d_text``
the T5 width (``TextConfig.d_model``, or the loaded checkpoint's).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from unihema.config.schema import TextConfig

logger = logging.getLogger(__name__)

#: The tokenizer shipped in the package (trained by tools/train_tokenizer.py).
SHIPPED_TOKENIZER = Path(__file__).resolve().parents[1] / "assets" / "tokenizer"
_TOKENIZER_FILES = ("spiece.model", "tokenizer.json")
_SENTINEL = re.compile(r"(<extra_id_\d+>)")


# ----------------------------------------------------------------------------- tokenizer
def load_tokenizer(path: str = ""):
    """The T5 tokenizer in directory ``path``; ``''`` = the one shipped with unihema.

    A directory needs ``spiece.model`` (SentencePiece) or ``tokenizer.json``; a
    ``tokenizer_config.json`` beside it is honoured (the shipped one declares that the sentinels
    ``<extra_id_N>`` are already pieces of the model, so none are appended).

    Raises:
        FileNotFoundError: the directory is missing or holds no tokenizer files.
        ValueError: the files load but give an unusable tokenizer (no pad token, or plain words
            all map to ``<unk>``).
    """
    from transformers import T5Tokenizer

    folder = Path(path).expanduser() if path else SHIPPED_TOKENIZER
    if not folder.is_dir():
        raise FileNotFoundError(f"tokenizer directory '{folder}' does not exist; give a T5 "
                                f"tokenizer directory or '' for the one shipped with unihema")
    if not any((folder / f).is_file() for f in _TOKENIZER_FILES):
        found = sorted(p.name for p in folder.iterdir())[:10]
        raise FileNotFoundError(
            f"tokenizer directory '{folder}' has none of {list(_TOKENIZER_FILES)} (found: "
            f"{found or 'nothing'}); point model.text.tokenizer to a T5 tokenizer directory "
            f"or '' for the one shipped with unihema")
    # from_pretrained(dir), never T5Tokenizer(vocab_file=...): in transformers 5 the latter
    # silently builds a 4-token vocabulary.
    tok = T5Tokenizer.from_pretrained(str(folder), local_files_only=True)
    if tok.pad_token_id is None or tok.eos_token_id is None:
        raise ValueError(f"tokenizer in '{folder}' has no pad or eos token; T5 needs both")
    probe = tok("the cell", add_special_tokens=False).input_ids
    if not probe or all(i == tok.unk_token_id for i in probe):
        raise ValueError(f"tokenizer in '{folder}' ({len(tok)} tokens) maps plain words to "
                         f"<unk>: its vocabulary did not load")
    return tok


def clean_text(text: str) -> str:
    """Normalise spacing around sentinels: ``"a<extra_id_1>b"`` -> ``"a <extra_id_1> b"``.

    Added tokens swallow the space before them when encoded, so decoding glues a sentinel to
    the previous word; T5 span targets always separate them by single spaces.
    """
    parts = [p.strip() for p in _SENTINEL.split(text)]
    return " ".join(p for p in parts if p)


# ----------------------------------------------------------------------------- model
def _clear_cache_hook(module: "TextModel", _incompatible_keys) -> None:
    module.clear_cache()  # new weights make cached phrase embeddings stale


@dataclass
class DecoderOutput:
    """``loss`` scalar (mean cross-entropy over target tokens), ``accuracy`` (teacher-forced
    argmax accuracy over the same tokens, detached) and ``tokens`` (how many were scored)."""

    loss: torch.Tensor
    accuracy: torch.Tensor
    tokens: int


class TextModel(nn.Module):
    """A T5 encoder-decoder with its tokenizer; see the module docstring for the roles.

    Random init from the sizes of :class:`TextConfig`, or ``pretrained``: a local Hugging Face T5
    directory (``config.json`` + weights), whose sizes then win over the config's (``dropout``
    always comes from the config). The vocabulary and the pad/eos/decoder-start ids always follow
    the tokenizer: a checkpoint with another vocabulary size is resized (with a warning).

    ``t5_config`` (a ``T5Config`` dict, see :meth:`architecture`) rebuilds exactly the
    architecture of a saved model, randomly initialised, for a whole-model checkpoint to load
    its weights into: a T5 loaded from ``pretrained`` may differ from what the sizes describe
    (activation, output scaling, relative-attention buckets).
    """

    def __init__(self, *, tokenizer, d_model: int = 768, d_kv: int = 64, d_ff: int = 2048,
                 num_layers: int = 12, num_decoder_layers: int = 12, num_heads: int = 12,
                 dropout: float = 0.0, pretrained: str = "", max_prompt_tokens: int = 96,
                 max_target_tokens: int = 64, t5_config: Optional[Dict[str, Any]] = None,
                 cache_size: int = 4096):
        super().__init__()
        from transformers import T5Config, T5ForConditionalGeneration

        self.tokenizer = tokenizer
        self.max_prompt_tokens = max_prompt_tokens
        self.max_target_tokens = max_target_tokens
        vocab = len(tokenizer)
        ids = dict(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                   decoder_start_token_id=tokenizer.pad_token_id)
        if pretrained:
            folder = Path(pretrained).expanduser()
            if not (folder / "config.json").is_file():
                raise FileNotFoundError(f"model.text.pretrained '{folder}' is not a Hugging Face "
                                        f"T5 directory (no config.json)")
            # float32 always: checkpoints stored in bf16 would crawl on CPU.
            self.t5 = T5ForConditionalGeneration.from_pretrained(
                str(folder), local_files_only=True, dtype=torch.float32, dropout_rate=dropout)
            # the tokenizer's special ids win over whatever the checkpoint was saved with
            for key, value in ids.items():
                setattr(self.t5.config, key, value)
                setattr(self.t5.generation_config, key, value)
            loaded = self.t5.config.vocab_size
            if loaded != vocab:
                logger.warning("T5 checkpoint '%s' has %d token embeddings, the tokenizer %d "
                               "tokens: resizing to %d (rows only line up with tokens when this "
                               "tokenizer is the checkpoint's own)",
                               folder, loaded, vocab, vocab)
                self.t5.resize_token_embeddings(vocab)
        elif t5_config is not None:
            cfg = T5Config.from_dict({**t5_config, "vocab_size": vocab, "dropout_rate": dropout,
                                      **ids})
            self.t5 = T5ForConditionalGeneration(cfg)
        else:
            # Tied input/output embeddings with the decoder output scaled by d_model**-0.5 (the
            # original T5 recipe; transformers 5 ties T5's lm_head in any case, and the scaling
            # keeps the initial logits O(1) with the unit-variance embedding init). Gated GELU
            # feed-forward as in T5 v1.1 / Flan-T5, which trains better from scratch.
            cfg = T5Config(vocab_size=vocab, d_model=d_model, d_kv=d_kv, d_ff=d_ff,
                           num_layers=num_layers, num_decoder_layers=num_decoder_layers,
                           num_heads=num_heads, dropout_rate=dropout,
                           feed_forward_proj="gated-gelu", tie_word_embeddings=True,
                           is_encoder_decoder=True, **ids)
            self.t5 = T5ForConditionalGeneration(cfg)
        self._cache: "OrderedDict[str, torch.Tensor]" = OrderedDict()
        self._cache_size = cache_size
        self._cache_version: Tuple[int, ...] = ()
        self.register_load_state_dict_post_hook(_clear_cache_hook)

    @classmethod
    def from_config(cls, cfg: TextConfig, tokenizer=None,
                    t5_config: Optional[Dict[str, Any]] = None) -> "TextModel":
        """Build from ``model.text``; the tokenizer defaults to ``load_tokenizer(cfg.tokenizer)``.

        ``t5_config``: see the class docstring (ignored when ``cfg.pretrained`` is set).
        """
        return cls(tokenizer=tokenizer if tokenizer is not None else load_tokenizer(cfg.tokenizer),
                   d_model=cfg.d_model, d_kv=cfg.d_kv, d_ff=cfg.d_ff, num_layers=cfg.num_layers,
                   num_decoder_layers=cfg.num_decoder_layers, num_heads=cfg.num_heads,
                   dropout=cfg.dropout, pretrained=cfg.pretrained,
                   max_prompt_tokens=cfg.max_prompt_tokens,
                   max_target_tokens=cfg.max_target_tokens, t5_config=t5_config)

    def architecture(self) -> Dict[str, Any]:
        """The T5 config as a JSON-able dict; ``TextModel(t5_config=...)`` rebuilds it."""
        return self.t5.config.to_dict()

    @property
    def d_model(self) -> int:
        """Width of encoder states and of the decoder memory (``d_text``)."""
        return self.t5.config.d_model

    @property
    def device(self) -> torch.device:
        return self.t5.shared.weight.device

    # ------------------------------------------------------------------------- cache
    def clear_cache(self) -> None:
        """Forget cached phrase embeddings (weights, mode or device changed)."""
        self._cache.clear()

    def _weights_version(self) -> Tuple[int, ...]:
        # Every in-place change of a tensor (optimizer step, load_state_dict, manual init) bumps
        # its version counter, so comparing them catches weights edited while in eval mode.
        return tuple(p._version for p in self.t5.encoder.parameters())

    def train(self, mode: bool = True) -> "TextModel":
        # Only entering training invalidates: eval() after eval() (as predict loops do) keeps the
        # cache, and nothing is cached while training.
        if mode:
            self.clear_cache()
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):
        # .to(device / dtype) would leave cached embeddings on the old device
        self.clear_cache()
        return super()._apply(fn, *args, **kwargs)

    # ------------------------------------------------------------------------- encoder
    def tokenize(self, texts: List[str], max_len: Optional[int] = None
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, attention_mask)``, both ``[B, T]`` long on the model's device.

        Padded to the longest text, cut to ``max_len`` tokens (default ``max_prompt_tokens``);
        every row ends with ``</s>``.
        """
        enc = self.tokenizer(list(texts), padding="longest", truncation=True,
                             max_length=max_len or self.max_prompt_tokens, return_tensors="pt")
        return (enc["input_ids"].long().to(self.device),
                enc["attention_mask"].long().to(self.device))

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``[B, T]`` ids and mask -> ``[B, T, d_text]`` last hidden state of the T5 encoder."""
        return self.t5.encoder(input_ids=input_ids, attention_mask=attention_mask
                               ).last_hidden_state

    def _embed(self, phrases: List[str]) -> torch.Tensor:
        """``[N, d_text]``: masked mean of each phrase's encoder states (its ``</s>`` included)."""
        ids, mask = self.tokenize(phrases)
        states = self.encode(ids, mask)
        m = mask.unsqueeze(-1).to(states.dtype)
        return (states * m).sum(1) / m.sum(1).clamp(min=1.0)

    def embed_phrases(self, phrases: List[str]) -> torch.Tensor:
        """``[N, d_text]`` embeddings of short phrases (class names), each encoded alone.

        Each distinct phrase is encoded once per call; duplicates share its row. In eval mode
        under ``torch.no_grad`` results are cached by phrase (the heads ask for the same class
        names every batch) until the weights change; in training, or whenever gradients are on,
        nothing is cached, so the embeddings carry gradients to the encoder.
        """
        phrases = list(phrases)
        if not phrases:
            return self.t5.shared.weight.new_zeros((0, self.d_model))
        row_of = {p: i for i, p in enumerate(dict.fromkeys(phrases))}
        unique = list(row_of)
        index = torch.tensor([row_of[p] for p in phrases], device=self.device)
        if self.training or torch.is_grad_enabled():
            return self._embed(unique)[index]
        version = self._weights_version()
        if version != self._cache_version:
            self.clear_cache()
            self._cache_version = version
        missing = [p for p in unique if p not in self._cache]
        if missing:
            for p, row in zip(missing, self._embed(missing)):
                self._cache[p] = row
        for p in unique:
            self._cache.move_to_end(p)
        rows = torch.stack([self._cache[p] for p in unique])
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return rows[index]

    # ------------------------------------------------------------------------- decoder
    def _memory(self, memory: torch.Tensor, memory_mask: torch.Tensor):
        from transformers.modeling_outputs import BaseModelOutput

        if memory.dim() != 3 or memory.shape[-1] != self.d_model:
            raise ValueError(f"decoder memory must be [B, M, {self.d_model}], got "
                             f"{list(memory.shape)}")
        if memory_mask.shape != memory.shape[:2]:
            raise ValueError(f"memory_mask must be [B, M] = {list(memory.shape[:2])}, got "
                             f"{list(memory_mask.shape)}")
        return BaseModelOutput(last_hidden_state=memory), memory_mask.long()

    def labels(self, targets: List[str], max_len: Optional[int] = None) -> torch.Tensor:
        """``[B, L]`` long target ids ending with ``</s>``, padding set to -100 (ignored)."""
        ids, mask = self.tokenize(targets, max_len or self.max_target_tokens)
        return ids.masked_fill(mask == 0, -100)

    def decoder_forward(self, memory: torch.Tensor, memory_mask: torch.Tensor,
                        targets: List[str]) -> DecoderOutput:
        """Teacher-forced decoding of ``targets`` (B strings) from ``memory`` [B, M, d_text]
        with ``memory_mask`` [B, M] (1 = attend); see :class:`DecoderOutput`."""
        if len(targets) != memory.shape[0]:
            raise ValueError(f"{len(targets)} targets for a memory batch of {memory.shape[0]}")
        if not targets:
            zero = memory.sum() * 0.0  # keeps the graph connected for an empty batch
            return DecoderOutput(zero, zero.detach(), 0)
        enc, mask = self._memory(memory, memory_mask)
        labels = self.labels(targets)
        out = self.t5(encoder_outputs=enc, attention_mask=mask, labels=labels, use_cache=False)
        scored = labels != -100
        with torch.no_grad():
            hits = (out.logits.argmax(-1) == labels) & scored
            acc = hits.sum().float() / scored.sum().clamp(min=1)
        return DecoderOutput(out.loss, acc, int(scored.sum()))

    def decoder_loss(self, memory: torch.Tensor, memory_mask: torch.Tensor,
                     targets: List[str]) -> torch.Tensor:
        """Scalar cross-entropy of generating ``targets`` from ``memory`` [B, M, d_text]."""
        return self.decoder_forward(memory, memory_mask, targets).loss

    def decode(self, ids: torch.Tensor) -> List[str]:
        """``[B, L]`` generated ids -> strings, sentinels kept, pad and ``</s>`` dropped.

        Everything after the first ``</s>`` is ignored.
        """
        pad, eos = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        texts = []
        for row in ids.tolist():
            if eos in row:
                row = row[:row.index(eos)]
            row = [i for i in row if i != pad]
            # skip_special_tokens would also drop the sentinels, which MLM answers need
            text = self.tokenizer.decode(row, skip_special_tokens=False,
                                         clean_up_tokenization_spaces=False)
            texts.append(clean_text(text))
        return texts

    @torch.no_grad()
    def generate(self, memory: torch.Tensor, memory_mask: torch.Tensor, *,
                 max_new_tokens: Optional[int] = None, num_beams: int = 1) -> List[str]:
        """Decode one answer per memory row: ``memory`` [B, M, d_text], ``memory_mask`` [B, M].

        Greedy when ``num_beams == 1``, else beam search; at most ``max_new_tokens`` tokens
        (default ``max_target_tokens``). Returns B strings.
        """
        if memory.shape[0] == 0:
            return []
        enc, mask = self._memory(memory, memory_mask)
        ids = self.t5.generate(encoder_outputs=enc, attention_mask=mask,
                               max_new_tokens=max_new_tokens or self.max_target_tokens,
                               num_beams=num_beams, do_sample=False)
        return self.decode(ids)
