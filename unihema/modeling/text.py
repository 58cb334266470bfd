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
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
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
                 cache_size: int = 4096, copy: bool = False):
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
        self.copy = bool(copy)
        if self.copy:
            d = self.t5.config.d_model
            self.copy_query = nn.Linear(d, d, bias=False)
            self.copy_key = nn.Linear(d, d, bias=False)
            self.copy_gate = nn.Linear(d, 1)
            # how strongly step t of the answer points at token t of the reading (the copy of
            # a passage, in order), read from the decoder state; starts at zero
            self.copy_align = nn.Linear(d, 1)
            nn.init.zeros_(self.copy_align.weight)
            nn.init.zeros_(self.copy_align.bias)
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
                   max_target_tokens=cfg.max_target_tokens, t5_config=t5_config,
                   copy=cfg.copy)

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

    def tokenize_pairs(self, texts: List[str], seconds: List[str],
                       max_len: Optional[int] = None
                       ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``texts[i] + " " + seconds[i]`` tokenized as two parts, so the second part's tokens
        know their place in it: ``(input_ids, attention_mask, offsets)``, all ``[B, T]``;
        ``offsets`` counts the tokens of the second part from 0 (-1 for the first part and
        padding). A row longer than ``max_len`` loses the end of its first part."""
        limit = max_len or self.max_prompt_tokens
        first = self.tokenizer(list(texts), add_special_tokens=False).input_ids
        second = self.tokenizer(list(seconds)).input_ids  # ends with </s>
        rows = []
        for a, b in zip(first, second):
            b = b[-limit:]
            rows.append((a[:max(0, limit - len(b))], b))
        width = max(len(a) + len(b) for a, b in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        offsets = torch.full((len(rows), width), -1, dtype=torch.long)
        for i, (a, b) in enumerate(rows):
            ids[i, :len(a) + len(b)] = torch.tensor(a + b)
            mask[i, :len(a) + len(b)] = 1
            offsets[i, len(a):len(a) + len(b)] = torch.arange(len(b))
        return ids.to(self.device), mask.to(self.device), offsets.to(self.device)

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

    def _mix(self, logits: torch.Tensor, states: torch.Tensor, memory: torch.Tensor,
             memory_ids: Optional[torch.Tensor], memory_offsets: Optional[torch.Tensor] = None,
             first_step: int = 0) -> torch.Tensor:
        """Log-probabilities ``[B, L, V]`` of the next token: the vocabulary distribution of
        ``logits`` alone, or, with the copy pointer, mixed with attention over the memory
        tokens that carry a token id (``memory_ids [B, M]``, -1 elsewhere) by a gate read from
        the decoder ``states [B, L, d_text]``. ``memory_offsets [B, M]`` (the place of a token
        in the reading, -1 elsewhere) lets answer step ``first_step + l`` point at reading
        token ``first_step + l``, with a strength read from the state."""
        if not self.copy or memory_ids is None:
            return logits.log_softmax(-1)
        valid = memory_ids >= 0  # [B, M]
        scores = torch.einsum("bld,bmd->blm", self.copy_query(states), self.copy_key(memory))
        scores = scores / states.shape[-1] ** 0.5
        if memory_offsets is not None:
            steps = torch.arange(first_step, first_step + states.shape[1],
                                 device=states.device)
            aligned = memory_offsets[:, None, :] == steps[None, :, None]  # [B, L, M]
            scores = scores + self.copy_align(states) * aligned
        scores = scores.masked_fill(~valid[:, None, :], float("-inf"))
        attn = scores.softmax(-1).nan_to_num(0.0)  # a row without copyable tokens: all zero
        copied = logits.new_zeros(logits.shape).scatter_add_(
            2, memory_ids.clamp(min=0)[:, None, :].expand(-1, logits.shape[1], -1), attn)
        gate = torch.sigmoid(self.copy_gate(states))
        gate = torch.where(valid.any(1)[:, None, None], gate, torch.ones_like(gate))
        return (gate * logits.softmax(-1) + (1 - gate) * copied).clamp(min=1e-9).log()

    def decoder_forward(self, memory: torch.Tensor, memory_mask: torch.Tensor,
                        targets: List[str], memory_ids: Optional[torch.Tensor] = None,
                        memory_offsets: Optional[torch.Tensor] = None) -> DecoderOutput:
        """Teacher-forced decoding of ``targets`` (B strings) from ``memory`` [B, M, d_text]
        with ``memory_mask`` [B, M] (1 = attend); ``memory_ids`` [B, M]: the token id of each
        memory position that may be copied (-1: none; used when ``copy`` is on);
        ``memory_offsets`` [B, M]: see :meth:`_mix`. See :class:`DecoderOutput`."""
        if len(targets) != memory.shape[0]:
            raise ValueError(f"{len(targets)} targets for a memory batch of {memory.shape[0]}")
        if not targets:
            zero = memory.sum() * 0.0  # keeps the graph connected for an empty batch
            return DecoderOutput(zero, zero.detach(), 0)
        enc, mask = self._memory(memory, memory_mask)
        labels = self.labels(targets)
        scored = labels != -100
        logp = None
        if self.copy and memory_ids is not None:
            # decoder inputs without labels: T5's own vocabulary-only loss would be wasted
            out = self.t5(encoder_outputs=enc, attention_mask=mask, use_cache=False,
                          decoder_input_ids=self.t5.prepare_decoder_input_ids_from_labels(labels),
                          output_hidden_states=True)
            logp = self._mix(out.logits, out.decoder_hidden_states[-1], memory, memory_ids,
                             memory_offsets)
            loss = F.nll_loss(logp.flatten(0, 1), labels.flatten(), ignore_index=-100)
        else:
            out = self.t5(encoder_outputs=enc, attention_mask=mask, labels=labels,
                          use_cache=False)
            loss = out.loss
        with torch.no_grad():
            pred = (logp if logp is not None else out.logits).argmax(-1)
            hits = (pred == labels) & scored
            acc = hits.sum().float() / scored.sum().clamp(min=1)
        return DecoderOutput(loss, acc, int(scored.sum()))

    def decoder_loss(self, memory: torch.Tensor, memory_mask: torch.Tensor,
                     targets: List[str], memory_ids: Optional[torch.Tensor] = None,
                     memory_offsets: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Scalar cross-entropy of generating ``targets`` from ``memory`` [B, M, d_text]."""
        return self.decoder_forward(memory, memory_mask, targets, memory_ids,
                                    memory_offsets).loss

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
                 max_new_tokens: Optional[int] = None, num_beams: int = 1,
                 memory_ids: Optional[torch.Tensor] = None,
                 memory_offsets: Optional[torch.Tensor] = None, with_probs: bool = False
                 ) -> Union[List[str], Tuple[List[str], List[float]]]:
        """Decode one answer per memory row: ``memory`` [B, M, d_text], ``memory_mask`` [B, M]
        (``memory_ids``, ``memory_offsets``: see :meth:`decoder_forward`).

        Greedy when ``num_beams == 1``, else beam search; at most ``max_new_tokens`` tokens
        (default ``max_target_tokens``). Returns B strings; with ``with_probs`` also the
        sequence probability of each (:meth:`sequence_probs`).
        """
        if memory.shape[0] == 0:
            return ([], []) if with_probs else []
        max_new = max_new_tokens or self.max_target_tokens
        if self.copy and memory_ids is not None:
            ids = self._search(memory, memory_mask, memory_ids, memory_offsets, max_new,
                               num_beams)
        else:
            enc, mask = self._memory(memory, memory_mask)
            ids = self.t5.generate(encoder_outputs=enc, attention_mask=mask,
                                   max_new_tokens=max_new, num_beams=num_beams,
                                   do_sample=False)[:, 1:]  # without the start token
        texts = self.decode(ids)
        if not with_probs:
            return texts
        return texts, self.sequence_probs(memory, memory_mask, ids, memory_ids, memory_offsets)

    @torch.no_grad()
    def sequence_probs(self, memory: torch.Tensor, memory_mask: torch.Tensor, ids: torch.Tensor,
                       memory_ids: Optional[torch.Tensor] = None,
                       memory_offsets: Optional[torch.Tensor] = None) -> List[float]:
        """The probability the decoder gives each generated row of ``ids [B, L]`` (without
        the start token): the product of its token probabilities up to and including the
        first ``</s>`` (all ``L`` tokens of a row cut at the length limit), from the same
        distribution generation picks from (the copy-mixed one when ``copy`` is on)."""
        labels = ids.clone()
        eos = labels == self.tokenizer.eos_token_id
        labels[(eos.long().cumsum(1) - eos.long()) > 0] = -100  # after the first </s>
        if labels.shape[1] == 0:
            return [1.0] * labels.shape[0]
        enc, mask = self._memory(memory, memory_mask)
        out = self.t5(encoder_outputs=enc, attention_mask=mask, use_cache=False,
                      decoder_input_ids=self.t5.prepare_decoder_input_ids_from_labels(labels),
                      output_hidden_states=True)
        logp = self._mix(out.logits, out.decoder_hidden_states[-1], memory, memory_ids,
                         memory_offsets)
        scored = labels != -100
        tok = logp.gather(-1, labels.clamp(min=0)[..., None])[..., 0] * scored
        return [float(p) for p in tok.sum(1).exp().clamp(0.0, 1.0)]

    def _search(self, memory: torch.Tensor, memory_mask: torch.Tensor,
                memory_ids: torch.Tensor, memory_offsets: Optional[torch.Tensor],
                max_new: int, beams: int) -> torch.Tensor:
        """Beam search (greedy for one beam) over the copy-mixed distribution; returns the
        best sequence per row, ``[B, <= max_new]`` ids without the start token."""
        b = memory.shape[0]
        start = self.t5.config.decoder_start_token_id
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        rep = lambda t: t.repeat_interleave(beams, 0)  # noqa: E731
        mem, mids = rep(memory), rep(memory_ids)
        moff = None if memory_offsets is None else rep(memory_offsets)
        enc, mask = self._memory(mem, rep(memory_mask))
        seqs = torch.full((b * beams, 1), start, dtype=torch.long, device=memory.device)
        scores = torch.zeros(b, beams, device=memory.device)
        scores[:, 1:] = float("-inf")  # the beams start as one
        done = torch.zeros(b * beams, dtype=torch.bool, device=memory.device)
        for step in range(max_new):
            out = self.t5(encoder_outputs=enc, attention_mask=mask, decoder_input_ids=seqs,
                          use_cache=False, output_hidden_states=True)
            logp = self._mix(out.logits[:, -1:], out.decoder_hidden_states[-1][:, -1:], mem,
                             mids, moff, first_step=step)[:, 0]  # [B*beams, V]
            # a finished beam only continues with padding, at no cost
            logp = torch.where(done[:, None], torch.full_like(logp, float("-inf")), logp)
            logp[done, pad] = 0.0
            total = (scores.view(-1, 1) + logp).view(b, -1)  # [B, beams*V]
            best, idx = total.topk(beams, dim=-1)
            parent = idx // logp.shape[-1] + torch.arange(b, device=idx.device)[:, None] * beams
            token = idx % logp.shape[-1]
            seqs = torch.cat([seqs[parent.flatten()], token.view(-1, 1)], 1)
            done = done[parent.flatten()] | (token.view(-1) == eos)
            scores = best
            if bool(done.all()):
                break
        return seqs.view(b, beams, -1)[:, 0, 1:]
