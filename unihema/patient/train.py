"""Training the patient encoder on frozen cell embeddings (CPU-sized: seconds per fold).

Loss per step over a batch of patients: cross-entropy of the diagnosis head plus ``align`` x
the contrastive loss between each patient's embedding and the embedding of its findings text
(:func:`info_nce`, both directions). Patients whose findings read the same share one text:
in the text -> patient direction every patient with that text is a positive.

Each step a bag keeps a random ``cell_keep`` share of its cells (at least one), a cheap
augmentation that makes the attention look at more than a few cells.
"""

from __future__ import annotations

import logging
import math
import time
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F

from unihema.patient.encoder import EncoderConfig, PatientEncoder, pad_bags

logger = logging.getLogger(__name__)


def info_nce(patients: torch.Tensor, texts: torch.Tensor, text_ids: torch.Tensor,
             tau: float) -> torch.Tensor:
    """Symmetric InfoNCE between ``patients [B, E]`` and the distinct texts ``texts [M, E]``
    (both unit norm), patient ``b`` reading text ``text_ids[b]`` (``[B]`` in ``[0, M)``).

    patient -> text: cross-entropy over the ``M`` texts; text -> patient: for each text, minus
    the log of the softmax mass (over the ``B`` patients) on the patients that read it. The
    mean of the two."""
    sims = patients @ texts.t() / tau                                # [B, M]
    p2t = F.cross_entropy(sims, text_ids)
    pos = F.one_hot(text_ids, texts.shape[0]).t().bool()             # [M, B]
    log_p = sims.t().log_softmax(-1)                                 # [M, B]
    t2p = -(log_p.masked_fill(~pos, float("-inf")).logsumexp(-1)).mean()
    return (p2t + t2p) / 2


def _subsample(bag: torch.Tensor, keep: float, gen: torch.Generator) -> torch.Tensor:
    if keep >= 1.0 or len(bag) <= 1:
        return bag
    n = max(1, int(round(keep * len(bag))))
    return bag[torch.randperm(len(bag), generator=gen)[:n]]


def fit_encoder(bags: Sequence[torch.Tensor], labels: Sequence[int], diagnoses: List[str],
                config: Optional[EncoderConfig] = None, *,
                text_embeddings: Optional[torch.Tensor] = None,
                text_ids: Optional[Sequence[int]] = None,
                meta: Optional[dict] = None) -> PatientEncoder:
    """Train a :class:`PatientEncoder` on ``bags`` (each ``[n_i, D]`` cell embeddings) with
    diagnosis indices ``labels`` into ``diagnoses``.

    ``text_embeddings [M, E]`` (the model's text side, unit norm) and ``text_ids`` (per bag,
    the index of its findings text) switch on the alignment (``config.align > 0``); ``E``
    must be the encoder's ``embed_dim``. ``config.in_dim`` is set from the bags.
    """
    if len(bags) != len(labels) or not bags:
        raise ValueError(f"fit_encoder: {len(bags)} bags and {len(labels)} labels")
    bad = [i for i, y in enumerate(labels) if not 0 <= int(y) < len(diagnoses)]
    if bad:
        raise ValueError(f"fit_encoder: labels of bags {bad[:5]} are outside the "
                         f"{len(diagnoses)} diagnoses")
    cfg = EncoderConfig(**{**(config.__dict__ if config else {}),
                           "in_dim": int(bags[0].shape[1])})
    align = cfg.align > 0 and text_embeddings is not None and text_ids is not None
    if align and text_embeddings.shape[1] != cfg.out_dim:
        raise ValueError(f"fit_encoder: text embeddings are {text_embeddings.shape[1]}-d, the "
                         f"patient embedding {cfg.out_dim}-d (set embed_dim to match)")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    enc = PatientEncoder(cfg, diagnoses, meta)
    opt = torch.optim.AdamW(enc.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    y_all = torch.as_tensor([int(v) for v in labels])
    t_all = torch.as_tensor([int(v) for v in text_ids]) if align else None
    # classes weighted by inverse frequency: balanced accuracy is what is scored
    counts = torch.bincount(y_all, minlength=len(diagnoses)).float().clamp(min=1)
    weight = (counts.sum() / counts) / len(diagnoses)
    steps_per_epoch = max(1, -(-len(bags) // cfg.batch_size))
    total_steps = cfg.epochs * steps_per_epoch
    warm = max(1, total_steps // 10)
    # linear warm-up over a tenth of the steps, then a cosine decay to zero
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5
                                              * (1 + math.cos(math.pi * min(1.0, s / total_steps))))
    t0 = time.perf_counter()
    enc.train()
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(bags), generator=gen)
        total = 0.0
        for s in range(0, len(bags), cfg.batch_size):
            idx = order[s:s + cfg.batch_size]
            cells, mask = pad_bags([_subsample(bags[int(i)], cfg.cell_keep, gen) for i in idx])
            out = enc(cells, mask)
            loss = F.cross_entropy(out.logits, y_all[idx], weight=weight)
            if align:
                ids = t_all[idx]
                uniq, local = ids.unique(return_inverse=True)
                texts = enc.embed_text(text_embeddings[uniq])
                loss = loss + cfg.align * info_nce(out.embedding, texts, local, cfg.tau)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if epoch == cfg.epochs - 1 or epoch % 20 == 0:
            logger.debug("patient encoder epoch %d/%d loss %.4f", epoch + 1, cfg.epochs,
                         total / len(bags))
    enc.meta["train_seconds"] = round(time.perf_counter() - t0, 2)
    enc.meta["train_patients"] = len(bags)
    return enc.eval()
