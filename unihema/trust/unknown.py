"""Unknown-cell scores: how unlike every trained cell type a cell is (higher = more unknown).

Each scorer is registered in :data:`UNKNOWN_SCORERS` under its name, built with its options
(``UNKNOWN_SCORERS.get(name)(**params)``), fitted once on the training cells
(:meth:`UnknownScorer.fit` returns the tensors it needs, which the trust state saves as
``"<name>.<key>"``) and then scores any cells from their logits and embeddings alone:

* ``msp``: minus the maximum calibrated softmax probability (Hendrycks and Gimpel, 2017);
* ``energy``: minus ``T * logsumexp(logits / T)`` at ``T = 1`` (Liu et al., 2020);
* ``mahalanobis``: the smallest Mahalanobis distance (squared) from the cell embedding to a
  class mean, with one covariance shared by the classes (Lee et al., 2018), shrunk towards
  its mean variance by ``shrinkage``;
* ``knn``: one minus the cosine similarity to the ``k``-th nearest training embedding (Sun et
  al., 2022), over a bank of at most ``bank`` training cells;
* ``names`` (ours, the open-vocabulary text side): the cell's cosine similarity to the best of
  a bank of *other* names (generic words such as "abnormal cell" or the names of types the
  model was not trained on) minus its similarity to the best *known* class name. A cell that
  looks more like something the model can name but was not trained to output than like any
  of its trained types scores high. With an empty bank it is one minus the best known-name
  similarity (the unnormalised "max logit").

Shapes: ``logits [N, C]`` over the trained classes (raw, before the temperature),
``embeddings [N, D]`` unit-norm (the classify head's image embedding), scores ``[N]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from unihema.registry import Registry

UNKNOWN_SCORERS: Registry[type] = Registry(
    "unknown-cell scorer",
    "cls(**params); .fit(FitData) -> {key: Tensor}; "
    ".score(logits [N, C], embeddings [N, D] | None, tensors, temperature) -> [N]",
)

#: names the ``names`` scorer compares with by default: generic words for a cell that is none
#: of the trained types, and no cell-type name of any protocol's held-out classes
GENERIC_NAMES = ("cell", "blood cell", "abnormal cell", "unknown cell", "other cell",
                 "unusual cell", "atypical cell", "artifact", "debris", "stain precipitate")


@dataclass
class FitData:
    """What a scorer may learn from: the training cells' unit-norm ``embeddings [N, D]`` and
    ``labels [N]`` (indices into ``classes``), and ``embed_names(names) -> [K, D]`` unit-norm
    class-name embeddings from the model's text side (``None`` when no model is at hand)."""

    embeddings: torch.Tensor
    labels: torch.Tensor
    classes: List[str]
    embed_names: Optional[Callable[[Sequence[str]], torch.Tensor]] = None
    extra: Dict[str, Any] = field(default_factory=dict)


class UnknownScorer:
    """Base class: ``needs_embeddings`` says whether :meth:`score` reads the embeddings."""

    name = ""
    needs_embeddings = True

    def params(self) -> Dict[str, Any]:
        """The options the scorer was built with (saved in ``trust.json``)."""
        return {}

    def fit(self, data: FitData) -> Dict[str, torch.Tensor]:
        return {}

    def score(self, logits: torch.Tensor, embeddings: Optional[torch.Tensor],
              tensors: Dict[str, torch.Tensor], temperature: float = 1.0) -> torch.Tensor:
        raise NotImplementedError

    def _need(self, embeddings: Optional[torch.Tensor]) -> torch.Tensor:
        if embeddings is None:
            raise ValueError(f"unknown-cell scorer '{self.name}' needs the cell embeddings "
                             f"(the classify prediction's 'embedding'); none were given")
        return embeddings.float()


@UNKNOWN_SCORERS.register("msp")
class MaxSoftmax(UnknownScorer):
    name = "msp"
    needs_embeddings = False

    def score(self, logits, embeddings, tensors, temperature=1.0):
        return -(logits.float() / temperature).softmax(-1).max(-1).values


@UNKNOWN_SCORERS.register("energy")
class Energy(UnknownScorer):
    name = "energy"
    needs_embeddings = False

    def score(self, logits, embeddings, tensors, temperature=1.0):
        return -torch.logsumexp(logits.float(), dim=-1)


@UNKNOWN_SCORERS.register("mahalanobis")
class Mahalanobis(UnknownScorer):
    name = "mahalanobis"

    def __init__(self, shrinkage: float = 0.1) -> None:
        self.shrinkage = float(shrinkage)

    def params(self):
        return {"shrinkage": self.shrinkage}

    def fit(self, data):
        x, y = data.embeddings.double(), data.labels.long()
        present = sorted(set(y.tolist()))
        means = torch.zeros(len(data.classes), x.shape[1], dtype=torch.float64)
        for c in present:
            means[c] = x[y == c].mean(0)
        centred = x - means[y]
        cov = centred.t() @ centred / max(len(x) - 1, 1)
        d = cov.shape[0]
        cov = (1 - self.shrinkage) * cov + self.shrinkage * cov.diagonal().mean() * torch.eye(d)
        precision = torch.linalg.pinv(cov, hermitian=True)
        used = torch.zeros(len(data.classes), dtype=torch.bool)
        used[present] = True
        return {"means": means.float(), "precision": precision.float(), "used": used}

    def score(self, logits, embeddings, tensors, temperature=1.0):
        x = self._need(embeddings)
        means, prec = tensors["means"][tensors["used"]], tensors["precision"]
        diff = x[:, None, :] - means[None]  # [N, C, D]
        dist = torch.einsum("ncd,de,nce->nc", diff, prec, diff)
        return dist.min(1).values


@UNKNOWN_SCORERS.register("knn")
class KNearest(UnknownScorer):
    name = "knn"

    def __init__(self, k: int = 10, bank: int = 4000, seed: int = 0) -> None:
        self.k, self.bank, self.seed = int(k), int(bank), int(seed)

    def params(self):
        return {"k": self.k, "bank": self.bank, "seed": self.seed}

    def fit(self, data):
        x = torch.nn.functional.normalize(data.embeddings.float(), dim=-1)
        if len(x) > self.bank:
            g = torch.Generator().manual_seed(self.seed)
            x = x[torch.randperm(len(x), generator=g)[: self.bank]]
        return {"bank": x.contiguous()}

    def score(self, logits, embeddings, tensors, temperature=1.0):
        x = torch.nn.functional.normalize(self._need(embeddings), dim=-1)
        bank = tensors["bank"]
        k = min(self.k, len(bank))
        sims = x @ bank.t()
        return 1.0 - sims.topk(k, dim=1).values[:, -1]


@UNKNOWN_SCORERS.register("names")
class NameMargin(UnknownScorer):
    name = "names"

    def __init__(self, other: Sequence[str] = GENERIC_NAMES) -> None:
        self.other = [str(n) for n in other]

    def params(self):
        return {"other": list(self.other)}

    def fit(self, data):
        if data.embed_names is None:
            raise ValueError("unknown-cell scorer 'names' needs the model's text side to embed "
                             "the class names (FitData.embed_names)")
        out = {"known": data.embed_names(data.classes).float().contiguous()}
        if self.other:
            out["other"] = data.embed_names(self.other).float().contiguous()
        return out

    def score(self, logits, embeddings, tensors, temperature=1.0):
        x = torch.nn.functional.normalize(self._need(embeddings), dim=-1)
        known = (x @ tensors["known"].t()).max(1).values
        if "other" not in tensors:
            return 1.0 - known
        return (x @ tensors["other"].t()).max(1).values - known


def build_scorer(method: str, params: Optional[Dict[str, Any]] = None) -> UnknownScorer:
    """The registered scorer ``method`` built with ``params`` (a ``TypeError`` names the
    option it does not take)."""
    cls = UNKNOWN_SCORERS.get(method)
    try:
        return cls(**(params or {}))
    except TypeError as e:
        raise TypeError(f"unknown-cell scorer '{method}': bad options {params}: {e}") from None


def threshold_at_tpr(known_scores: torch.Tensor, tpr: float = 0.95) -> float:
    """The score under which a share ``tpr`` of known cells fall (the known cells are the
    positives that are kept; a cell scoring above it is flagged unknown)."""
    if known_scores.numel() == 0:
        raise ValueError("no known cells to choose the unknown-score threshold on")
    return float(torch.quantile(known_scores.double(), tpr))


__all__ = ["FitData", "GENERIC_NAMES", "UNKNOWN_SCORERS", "UnknownScorer", "build_scorer",
           "threshold_at_tpr"]
