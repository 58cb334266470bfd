"""Probes on frozen patient features and the retrieval scores of the protocol.

All functions take ``train`` / ``test`` feature matrices ``[n, F]`` (float tensors) and integer
labels; they are deterministic. Features are standardised with the training set's mean and
standard deviation before kNN and logistic regression (:func:`standardise`).

* :func:`knn_predict`: majority vote of the ``k`` nearest training patients (Euclidean on the
  standardised features); ties go to the class whose tied neighbours are nearest in sum.
* :func:`logistic_regression`: multinomial, L2-penalised (``l2`` on the weights, the mean
  loss), fitted by L-BFGS in torch (scikit-learn is not a dependency).
* :func:`balanced_accuracy`: the mean per-class recall over the classes present in the truth.
* :func:`precision_at_k`: for each test patient, the share of its ``k`` nearest training
  patients with the same diagnosis.
* :func:`recall_at_k`: for each query, the share of its relevant items among the top ``k``.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import torch


def standardise(train: torch.Tensor, test: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``train`` and ``test`` centred and scaled by the training mean and std (std floor 1e-6)."""
    mu = train.mean(0, keepdim=True)
    sd = train.std(0, keepdim=True, unbiased=False).clamp(min=1e-6)
    return (train - mu) / sd, (test - mu) / sd


def balanced_accuracy(truth: Sequence[int], pred: Sequence[int]) -> float:
    """Mean recall over the classes present in ``truth``."""
    t = torch.as_tensor(list(truth))
    p = torch.as_tensor(list(pred))
    if len(t) == 0:
        raise ValueError("balanced_accuracy: no items")
    recalls = [float((p[t == c] == c).float().mean()) for c in t.unique().tolist()]
    return sum(recalls) / len(recalls)


def _distances(train: torch.Tensor, test: torch.Tensor) -> torch.Tensor:
    return torch.cdist(test.double(), train.double())  # [n_test, n_train]


def knn_predict(train: torch.Tensor, y_train: Sequence[int], test: torch.Tensor, k: int = 5
                ) -> torch.Tensor:
    """``[n_test]`` labels by the vote of the ``k`` nearest training patients."""
    y = torch.as_tensor(list(y_train))
    k = min(k, len(y))
    d, idx = _distances(train, test).topk(k, largest=False)
    n_cls = int(y.max()) + 1
    out = []
    for drow, irow in zip(d, idx):
        votes = torch.bincount(y[irow], minlength=n_cls).double()
        best = votes == votes.max()
        if int(best.sum()) > 1:  # tie: the class of the nearest tied neighbours
            near = torch.full((n_cls,), float("inf"), dtype=torch.double)
            for c in best.nonzero().flatten().tolist():
                near[c] = drow[y[irow] == c].sum()
            out.append(int(near.argmin()))
        else:
            out.append(int(votes.argmax()))
    return torch.as_tensor(out)


def logistic_regression(train: torch.Tensor, y_train: Sequence[int], test: torch.Tensor,
                        l2: float = 1e-2, n_classes: int = 0, iters: int = 200
                        ) -> torch.Tensor:
    """``[n_test, C]`` class probabilities of a multinomial logistic regression fitted on
    ``train`` (features as given; standardise first)."""
    y = torch.as_tensor(list(y_train))
    c = max(int(n_classes), int(y.max()) + 1)
    x = train.double()
    w = torch.zeros(x.shape[1], c, dtype=torch.double, requires_grad=True)
    b = torch.zeros(c, dtype=torch.double, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return (test.double() @ w + b).softmax(-1).float()


def precision_at_k(train: torch.Tensor, y_train: Sequence[int], test: torch.Tensor,
                   y_test: Sequence[int], k: int = 5) -> float:
    """Mean share of same-diagnosis patients among each test patient's ``k`` nearest training
    patients (Euclidean on the features as given)."""
    y = torch.as_tensor(list(y_train))
    yt = torch.as_tensor(list(y_test))
    k = min(k, len(y))
    idx = _distances(train, test).topk(k, largest=False).indices
    return float((y[idx] == yt[:, None]).double().mean())


def recall_at_k(scores: torch.Tensor, relevant: Sequence[Sequence[int]], k: int) -> float:
    """``scores [Q, M]`` (higher is better) of ``M`` items per query; ``relevant[q]``: the
    indices relevant to query ``q``. Mean over queries with any relevant item of the share of
    them in the top ``k``; NaN when no query has one."""
    k = min(k, scores.shape[1])
    top = scores.topk(k, dim=1).indices
    vals = []
    for q, rel in enumerate(relevant):
        if rel:
            hit = set(top[q].tolist()) & set(int(r) for r in rel)
            vals.append(len(hit) / min(len(rel), k))
    return sum(vals) / len(vals) if vals else float("nan")
