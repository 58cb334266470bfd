"""The patient encoder: gated attention over a patient's cell embeddings -> one patient embedding.

A patient is a bag of ``N`` cells, each an embedding ``[D]`` that a unihema model gives
(:mod:`unihema.patient.features`: the classify head's unit-norm image embedding, the space
where the head compares cells with class names). The encoder (attention-based multiple
instance learning with the gated attention of Ilse et al., 2018):

1. each cell: ``h_i = GELU(W x_i)`` ``[H]`` (``H = hidden``; dropout in training);
2. ``K = branches`` attention scores per cell, ``s_ik = w_k . (tanh(V h_i) * sigmoid(U h_i))``,
   softmax over the patient's cells (padding masked) -> ``a_ik``, summing to 1 per branch;
3. the pooled vector ``z = concat_k sum_i a_ik h_i`` ``[K * H]``;
4. the patient embedding ``e = normalize(P z)`` ``[E]`` (unit norm; ``E = embed_dim``, by
   default the cell embedding's size, the space of the model's text embeddings);
5. the diagnosis logits ``scale * (e . c_j)`` over ``C`` diagnoses, ``c_j`` unit-norm learnt
   class vectors (a cosine classifier: kNN and the head read the same embedding);
6. the findings side: a text embedding ``t`` ``[E]`` of the findings (the model's own text
   encoder, frozen) is mapped by ``normalize(T t)`` (``T`` starts as the identity) into the
   space of ``e`` for the contrastive alignment (:func:`unihema.patient.train.info_nce`).

Saved as ``patient_encoder.safetensors`` (weights) + ``patient_encoder.json`` (the
:class:`EncoderConfig`, the diagnoses, the findings vocabulary and what the cells were embedded
with), written atomically; nothing is pickled.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from unihema.utils import atomic_save, atomic_write_text

WEIGHTS = "patient_encoder.safetensors"
CONFIG = "patient_encoder.json"


@dataclass
class EncoderConfig:
    """The encoder's sizes and training settings.

    ``in_dim``: cell embedding size ``D``; ``hidden``: ``H``; ``attention``: the gate's
    width; ``branches``: ``K`` attention maps; ``embed_dim``: ``E`` (0: ``in_dim``);
    ``dropout``: on ``h`` in training; ``cell_keep``: in training, each bag keeps a random
    ``cell_keep`` share of its cells per step (1.0: all); ``epochs``, ``lr``,
    ``weight_decay``, ``batch_size`` (patients per step); ``align``: weight of the
    contrastive findings loss (0: diagnosis only); ``tau``: its temperature; ``seed``.
    """

    in_dim: int = 64
    hidden: int = 128
    attention: int = 64
    branches: int = 2
    embed_dim: int = 0
    dropout: float = 0.1
    cell_keep: float = 0.7
    epochs: int = 60
    lr: float = 2e-3
    weight_decay: float = 1e-3
    batch_size: int = 32
    align: float = 0.5
    tau: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        for name in ("in_dim", "hidden", "attention", "branches", "epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.embed_dim < 0:
            problems.append(f"embed_dim must be >= 0 (0: in_dim), got {self.embed_dim}")
        if not 0.0 < self.cell_keep <= 1.0:
            problems.append(f"cell_keep must be in (0, 1], got {self.cell_keep}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if self.tau <= 0 or self.lr <= 0 or self.align < 0 or self.weight_decay < 0:
            problems.append(f"tau and lr must be > 0, align and weight_decay >= 0 (got tau "
                            f"{self.tau}, lr {self.lr}, align {self.align}, weight_decay "
                            f"{self.weight_decay})")
        if problems:
            raise ValueError("patient encoder config: " + "; ".join(problems))

    @property
    def out_dim(self) -> int:
        return int(self.embed_dim or self.in_dim)

    @classmethod
    def from_dict(cls, values: Dict[str, Any], source: str = CONFIG) -> "EncoderConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown encoder setting(s) {unknown}; known: "
                             f"{sorted(known)}")
        return cls(**values)


@dataclass
class PatientOutput:
    """What the encoder gives for ``B`` patients of at most ``N`` cells: ``embedding [B, E]``
    (unit norm), ``logits [B, C]``, ``attention [B, K, N]`` (each branch sums to 1 over a
    patient's cells, 0 on padding), ``pooled [B, K * H]``."""

    embedding: torch.Tensor
    logits: torch.Tensor
    attention: torch.Tensor
    pooled: torch.Tensor

    def cell_weights(self) -> torch.Tensor:
        """``[B, N]``: the attention averaged over branches (sums to 1 per patient)."""
        return self.attention.mean(1)


class PatientEncoder(nn.Module):
    """Gated attention-MIL over cell embeddings (module docstring) with a diagnosis head over
    ``diagnoses`` and a findings-text adapter. ``meta`` travels with the saved encoder
    (``findings_vocab``, ``cell_model``: what embedded the cells)."""

    def __init__(self, config: EncoderConfig, diagnoses: List[str],
                 meta: Optional[Dict[str, Any]] = None) -> None:
        super().__init__()
        if len(diagnoses) < 2 or len(set(diagnoses)) != len(diagnoses):
            raise ValueError(f"patient encoder: needs at least two distinct diagnoses, got "
                             f"{diagnoses}")
        self.config = config
        self.diagnoses = list(diagnoses)
        self.meta = dict(meta or {})
        c = config
        self.cell = nn.Sequential(nn.LayerNorm(c.in_dim), nn.Linear(c.in_dim, c.hidden),
                                  nn.GELU())
        self.drop = nn.Dropout(c.dropout)
        self.gate_v = nn.Linear(c.hidden, c.attention)
        self.gate_u = nn.Linear(c.hidden, c.attention)
        self.score = nn.Linear(c.attention, c.branches)
        self.project = nn.Linear(c.branches * c.hidden, c.out_dim)
        self.classes = nn.Parameter(F.normalize(torch.randn(len(diagnoses), c.out_dim), dim=-1))
        self.log_scale = nn.Parameter(torch.tensor([math.log(10.0)]))
        self.text = nn.Linear(c.out_dim, c.out_dim)
        with torch.no_grad():
            self.text.weight.copy_(torch.eye(c.out_dim))
            self.text.bias.zero_()

    # ------------------------------------------------------------------ forward
    def forward(self, cells: torch.Tensor, mask: Optional[torch.Tensor] = None
                ) -> PatientOutput:
        """``cells [B, N, D]`` (padded), ``mask [B, N]`` bool (True: a real cell; default all)
        -> :class:`PatientOutput`. A patient needs at least one real cell."""
        if cells.dim() != 3 or cells.shape[-1] != self.config.in_dim:
            raise ValueError(f"patient encoder: cells must be [B, N, {self.config.in_dim}], "
                             f"got {list(cells.shape)}")
        if mask is None:
            mask = torch.ones(cells.shape[:2], dtype=torch.bool, device=cells.device)
        if not bool(mask.any(1).all()):
            raise ValueError("patient encoder: a patient has no cells")
        h = self.drop(self.cell(cells))                                     # [B, N, H]
        gate = torch.tanh(self.gate_v(h)) * torch.sigmoid(self.gate_u(h))  # [B, N, A]
        s = self.score(gate).transpose(1, 2)                                # [B, K, N]
        s = s.masked_fill(~mask[:, None, :], float("-inf"))
        a = s.softmax(-1)
        pooled = torch.einsum("bkn,bnh->bkh", a, h).flatten(1)              # [B, K*H]
        emb = F.normalize(self.project(pooled), dim=-1)
        logits = emb @ F.normalize(self.classes, dim=-1).t() * self.log_scale.exp()
        return PatientOutput(emb, logits, a, pooled)

    def embed_text(self, text_embeddings: torch.Tensor) -> torch.Tensor:
        """``[M, E]`` findings-text embeddings (the model's text side) -> ``[M, E]`` unit-norm
        in the patient embedding's space."""
        return F.normalize(self.text(text_embeddings), dim=-1)

    @torch.no_grad()
    def encode(self, bags: List[torch.Tensor], chunk: int = 64) -> PatientOutput:
        """Eval-mode outputs of a list of bags (each ``[n_i, D]``), padded in chunks; the
        ``attention`` of the result is padded to the longest bag."""
        was = self.training
        self.eval()
        try:
            parts = [self(*pad_bags(bags[i:i + chunk])) for i in range(0, len(bags), chunk)]
        finally:
            self.train(was)
        n = max(p.attention.shape[-1] for p in parts)
        att = torch.cat([F.pad(p.attention, (0, n - p.attention.shape[-1])) for p in parts])
        return PatientOutput(torch.cat([p.embedding for p in parts]),
                             torch.cat([p.logits for p in parts]), att,
                             torch.cat([p.pooled for p in parts]))

    # ------------------------------------------------------------------ files
    def save(self, directory: Union[str, Path]) -> Path:
        """Write ``patient_encoder.safetensors`` and ``patient_encoder.json`` into
        ``directory`` (created), each atomically."""
        from safetensors.torch import save_file

        directory = Path(directory)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        atomic_save(directory / WEIGHTS, lambda tmp: save_file(state, str(tmp)))
        doc = {"config": asdict(self.config), "diagnoses": self.diagnoses, "meta": self.meta}
        atomic_write_text(directory / CONFIG, json.dumps(doc, indent=2))
        return directory

    @classmethod
    def load(cls, directory: Union[str, Path]) -> "PatientEncoder":
        """The encoder :meth:`save` wrote; errors name the file and what is wrong."""
        from safetensors.torch import load_file

        directory = Path(directory)
        cfg_path, w_path = directory / CONFIG, directory / WEIGHTS
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise FileNotFoundError(f"{directory}: not a patient encoder folder ({p.name} "
                                        f"is missing; `unihema patient train` writes one)")
        try:
            doc = json.loads(cfg_path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{cfg_path}: not valid JSON ({exc})") from None
        for key in ("config", "diagnoses"):
            if key not in doc:
                raise ValueError(f"{cfg_path}: field '{key}' is missing")
        enc = cls(EncoderConfig.from_dict(doc["config"], str(cfg_path)), doc["diagnoses"],
                  doc.get("meta"))
        state = load_file(str(w_path))
        missing = sorted(set(enc.state_dict()) - set(state))
        extra = sorted(set(state) - set(enc.state_dict()))
        if missing or extra:
            raise ValueError(f"{w_path}: tensors do not match {cfg_path.name} (missing "
                             f"{missing[:4]}, unexpected {extra[:4]})")
        try:
            enc.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(f"{w_path}: tensor shapes do not match {cfg_path.name}: "
                             f"{str(exc).splitlines()[-1].strip()}") from None
        return enc.eval()


def pad_bags(bags: List[torch.Tensor]):
    """``[n_i, D]`` tensors -> ``(cells [B, N, D], mask [B, N])``, zero padding masked."""
    if not bags:
        raise ValueError("pad_bags: no bags")
    n = max(int(b.shape[0]) for b in bags)
    d = int(bags[0].shape[1])
    cells = torch.zeros(len(bags), n, d, dtype=bags[0].dtype)
    mask = torch.zeros(len(bags), n, dtype=torch.bool)
    for i, b in enumerate(bags):
        cells[i, :len(b)] = b
        mask[i, :len(b)] = True
    return cells, mask
