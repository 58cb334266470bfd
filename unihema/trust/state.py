"""The trust state saved beside a model, and the per-cell verdict it gives.

A :class:`TrustState` holds what was fitted on held-out cells (``unihema trust fit``): the
softmax temperature, the conformal thresholds, the unknown-cell scorer with its statistics and
threshold, and the referral threshold. :meth:`TrustState.assess` turns a batch of cells'
logits and embeddings into one :class:`CellTrust` per cell.

Files, in the model folder (both written atomically, the tensors first, so a reader never sees
a ``trust.json`` naming tensors that are not there yet):

* ``trust.json``: every field but the tensors, with ``format`` and the sha256 of the tensor
  file;
* ``trust.safetensors``: :attr:`TrustState.tensors` (e.g. ``"mahalanobis.means"``,
  ``"knn.bank"``, ``"names.known"``, ``"class_embeddings"``, ``"logit_scale"``).

Conventions: ``logits [N, C]`` are raw (before the temperature), their columns in the order
of :attr:`TrustState.classes`; ``embeddings [N, D]`` are the classify head's unit-norm image
embeddings. A cell is referred to a person when its unknown score is above the threshold, or
when its calibrated confidence (top probability) is below :attr:`TrustState.referral_threshold`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

from unihema.trust.conformal import U, aps_sets
from unihema.trust.unknown import build_scorer
from unihema.utils import atomic_save, atomic_write_text, jsonable, sha256_file

TRUST_JSON = "trust.json"
TRUST_TENSORS = "trust.safetensors"
FORMAT = 1


@dataclass
class CellTrust:
    """One cell's verdict.

    ``probs``: calibrated, over the state's classes, summing to 1; ``label``: the most probable
    class; ``prediction_set``: the conformal set at the state's level, most probable first,
    never empty; ``unknown_score``: higher = less like any trained type (the scale depends on
    the method); ``unknown``: the score is above the state's threshold; ``refer``: the cell
    should go to a person; ``reason``: ``""`` when the model decides alone, else short words
    ("unknown type (score 3.2 > 2.1)", "ambiguous: 2 types", "confidence 0.71 below 0.93").
    """

    probs: Dict[str, float]
    label: str
    prediction_set: List[str]
    unknown_score: float
    unknown: bool
    refer: bool
    reason: str

    @property
    def confidence(self) -> float:
        """The probability of :attr:`label`."""
        return self.probs[self.label]

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready copy (``confidence`` included)."""
        return jsonable(dict(asdict(self), confidence=self.confidence))


@dataclass
class TrustState:
    """Everything fitted for per-cell trust; see the module docstring for the files."""

    classes: List[str]
    temperature: float
    #: ``{"0.90": qhat, "0.95": qhat}``: non-randomised APS thresholds per coverage level
    conformal: Dict[str, float]
    unknown_method: str
    #: unknown score above which a cell is flagged (95 % of known validation cells fall below)
    unknown_threshold: float
    #: calibrated top probability under which a cell is referred
    referral_threshold: float
    level: str = "0.90"
    target_accuracy: float = 0.98
    #: the scorer's options (``UNKNOWN_SCORERS.get(method)(**unknown_params)``)
    unknown_params: Dict[str, Any] = field(default_factory=dict)
    #: dataset/split names, item counts, date, model fingerprint
    fitted_on: Dict[str, Any] = field(default_factory=dict)
    tensors: Dict[str, torch.Tensor] = field(default_factory=dict)
    #: every fitted scorer's options ``{method: params}`` (its tensors are ``"<method>.*"``)
    scorers: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    #: every fitted scorer's threshold at the same share of known validation cells
    thresholds: Dict[str, float] = field(default_factory=dict)
    #: share of a type's own probability in its APS score (:mod:`unihema.trust.conformal`)
    conformal_u: float = U

    # ------------------------------------------------------------------ scoring
    def calibrated(self, logits: torch.Tensor) -> torch.Tensor:
        """``[N, C]`` probabilities at the fitted temperature."""
        return (logits.float() / self.temperature).softmax(-1)

    def prediction_sets(self, probs: torch.Tensor, level: Optional[str] = None
                        ) -> List[List[str]]:
        """Conformal sets (class names, most probable first) of calibrated ``probs [N, C]``
        at ``level`` (a key of :attr:`conformal`; default :attr:`level`)."""
        key = self._level_key(level)
        return [[self.classes[i] for i in s]
                for s in aps_sets(probs, self.conformal[key], self.conformal_u)]

    def unknown_scores(self, logits: torch.Tensor,
                       embeddings: Optional[torch.Tensor] = None,
                       method: Optional[str] = None) -> torch.Tensor:
        """``[N]`` unknown scores by ``method`` (default :attr:`unknown_method`; another
        method's tensors must be in the state)."""
        method = method or self.unknown_method
        params = (self.unknown_params if method == self.unknown_method
                  else self.scorers.get(method, {}))
        scorer = build_scorer(method, params)
        prefix = f"{method}."
        tensors = {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}
        return scorer.score(logits.float(), embeddings, tensors, self.temperature)

    def logits_from_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``[N, C]`` logits over :attr:`classes` from unit-norm ``embeddings [N, D]``, as the
        classify head computes them (needs ``class_embeddings`` and ``logit_scale``)."""
        missing = [k for k in ("class_embeddings", "logit_scale") if k not in self.tensors]
        if missing:
            raise ValueError(f"this trust state has no {missing}: give the logits")
        scale = float(self.tensors["logit_scale"].reshape(-1)[0])
        return embeddings.float() @ self.tensors["class_embeddings"].t() * scale

    def align(self, logits: torch.Tensor, item_classes: Sequence[str]) -> torch.Tensor:
        """Columns of ``logits [N, K]`` (over ``item_classes``) reordered to :attr:`classes`.

        Raises:
            ValueError: a class of the state is not among ``item_classes``.
        """
        index = {c: i for i, c in enumerate(item_classes)}
        missing = [c for c in self.classes if c not in index]
        if missing:
            raise ValueError(f"the trust state was fitted over {self.classes}; the logits "
                             f"have no column for {missing} (they are over "
                             f"{list(item_classes)})")
        return logits[..., [index[c] for c in self.classes]]

    def assess(self, logits: Optional[torch.Tensor],
               embeddings: Optional[torch.Tensor] = None) -> List[CellTrust]:
        """One :class:`CellTrust` per cell from ``logits [N, C]`` (over :attr:`classes`; when
        ``None``, computed from ``embeddings``) and ``embeddings [N, D]`` (needed by the
        embedding-based unknown scorers)."""
        if logits is None:
            if embeddings is None:
                raise ValueError("assess needs the logits or the embeddings")
            logits = self.logits_from_embeddings(embeddings)
        if logits.ndim != 2 or logits.shape[1] != len(self.classes):
            raise ValueError(f"logits must be [N, {len(self.classes)}] over {self.classes}, "
                             f"got {list(logits.shape)}")
        probs = self.calibrated(logits)
        sets = self.prediction_sets(probs)
        scores = self.unknown_scores(logits, embeddings).tolist()
        out = []
        for i in range(probs.shape[0]):
            p = probs[i].tolist()
            top = max(range(len(p)), key=p.__getitem__)
            unknown = bool(scores[i] > self.unknown_threshold)
            low = p[top] < self.referral_threshold
            out.append(CellTrust(
                probs={c: float(v) for c, v in zip(self.classes, p)},
                label=self.classes[top], prediction_set=sets[i],
                unknown_score=float(scores[i]), unknown=unknown, refer=unknown or low,
                reason=self._reason(scores[i], unknown, low, p[top], len(sets[i]))))
        return out

    def _reason(self, score: float, unknown: bool, low: bool, conf: float, size: int) -> str:
        parts = []
        if unknown:
            parts.append(f"unknown type (score {score:.3g} > {self.unknown_threshold:.3g})")
        if low:
            parts.append(f"ambiguous: {size} types" if size > 1 else
                         f"confidence {conf:.2f} below {self.referral_threshold:.2f}")
            if size > 1:
                parts[-1] += f" (confidence {conf:.2f} below {self.referral_threshold:.2f})"
        return "; ".join(parts)

    def _level_key(self, level: Optional[str]) -> str:
        key = self.level if level is None else level
        if key not in self.conformal:
            try:  # 0.9 or "0.9" for "0.90"
                key = f"{float(key):.2f}"
            except ValueError:
                pass
        if key not in self.conformal:
            raise KeyError(f"no conformal threshold at level {level!r}; fitted: "
                           f"{sorted(self.conformal)}")
        return key

    # ------------------------------------------------------------------ files
    def save(self, directory: Union[str, Path]) -> Path:
        """Write ``trust.safetensors`` then ``trust.json`` into ``directory`` atomically;
        returns the ``trust.json`` path."""
        from safetensors.torch import save_file

        directory = Path(directory)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.tensors.items()}
        atomic_save(directory / TRUST_TENSORS,
                    lambda tmp: save_file(tensors, str(tmp), metadata={"format": str(FORMAT)}))
        meta = {k: v for k, v in asdict(self).items() if k != "tensors"}
        meta = dict(format=FORMAT, **meta, tensor_file=TRUST_TENSORS,
                    tensor_sha256=sha256_file(directory / TRUST_TENSORS))
        return atomic_write_text(directory / TRUST_JSON,
                                 json.dumps(jsonable(meta), indent=2) + "\n")

    @classmethod
    def load(cls, directory: Union[str, Path]) -> Optional["TrustState"]:
        """The state saved in ``directory``; ``None`` when it has no ``trust.json``.

        Raises:
            ValueError: ``trust.json`` or ``trust.safetensors`` is malformed (names the file
                and the field).
        """
        directory = Path(directory)
        path = directory / TRUST_JSON
        if not path.is_file():
            return None
        try:
            meta = json.loads(path.read_text())
        except ValueError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{path}: expected a JSON object, got {type(meta).__name__}")
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: field 'format' is {meta.get('format')!r}; this version "
                             f"reads format {FORMAT}")
        kwargs = _check_fields(path, meta)
        tensor_path = directory / str(meta.get("tensor_file") or TRUST_TENSORS)
        if not tensor_path.is_file():
            raise ValueError(f"{path}: field 'tensor_file' names {tensor_path.name}, which is "
                             f"not in {directory}")
        digest = meta.get("tensor_sha256")
        if digest and sha256_file(tensor_path) != digest:
            raise ValueError(f"{tensor_path}: its sha256 differs from 'tensor_sha256' in "
                             f"{path}: the two files were not written together")
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(tensor_path))
        except Exception as e:  # safetensors raises its own error types
            raise ValueError(f"{tensor_path}: not a readable safetensors file ({e})") from None
        state = cls(**kwargs, tensors=dict(tensors))
        build_scorer(state.unknown_method, state.unknown_params)  # names a bad method now
        return state


#: field -> (type check, expectation in words)
_FIELDS = {
    "classes": (lambda v: isinstance(v, list) and v and all(isinstance(c, str) for c in v),
                "a non-empty list of class names"),
    "temperature": (lambda v: _num(v) and v > 0, "a positive number"),
    "conformal": (lambda v: isinstance(v, dict) and v and all(_num(q) for q in v.values()),
                  "an object {level: threshold}"),
    "unknown_method": (lambda v: isinstance(v, str) and v, "a scorer name"),
    "unknown_threshold": (lambda v: _num(v) or v is None, "a number (null: nothing flagged)"),
    "referral_threshold": (lambda v: _num(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "level": (lambda v: isinstance(v, str), "a level key such as \"0.90\""),
    "target_accuracy": (lambda v: _num(v) and 0 < v <= 1, "a number in (0, 1]"),
    "unknown_params": (lambda v: isinstance(v, dict), "an object"),
    "fitted_on": (lambda v: isinstance(v, dict), "an object"),
    "conformal_u": (lambda v: _num(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "scorers": (lambda v: isinstance(v, dict) and all(isinstance(p, dict)
                                                       for p in v.values()),
                "an object {method: options}"),
    "thresholds": (lambda v: isinstance(v, dict) and all(_num(t) or t is None
                                                          for t in v.values()),
                   "an object {method: threshold}"),
}
_OPTIONAL = {"level", "target_accuracy", "unknown_params", "fitted_on", "scorers",
             "thresholds", "conformal_u"}


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_fields(path: Path, meta: Dict[str, Any]) -> Dict[str, Any]:
    out = {}
    for name, (ok, expect) in _FIELDS.items():
        if name not in meta:
            if name in _OPTIONAL:
                continue
            raise ValueError(f"{path}: missing field '{name}' ({expect})")
        if not ok(meta[name]):
            raise ValueError(f"{path}: field '{name}' must be {expect}, got {meta[name]!r}")
        out[name] = meta[name]
    if out["unknown_threshold"] is None:  # JSON has no infinity: nothing is flagged
        out["unknown_threshold"] = math.inf
    if "thresholds" in out:
        out["thresholds"] = {m: math.inf if t is None else t
                             for m, t in out["thresholds"].items()}
    if out.get("level", "0.90") not in out["conformal"]:
        raise ValueError(f"{path}: field 'level' is {out.get('level', '0.90')!r}, not one of "
                         f"the fitted levels {sorted(out['conformal'])}")
    return out


__all__ = ["CellTrust", "FORMAT", "TRUST_JSON", "TRUST_TENSORS", "TrustState"]
