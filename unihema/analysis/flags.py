"""Smear-level review flags: a smear goes to a person when it holds cells that must not be
missed.

A :class:`FlagPolicy` is a list of :class:`FlagRule` s, validated data with defaults
(:data:`DEFAULT_POLICY`) that a lab replaces with its own YAML or JSON file
(:func:`load_policy`, ``unihema analyze --flags FILE``)::

    rules:
      - {kind: blasts, types: [blast], min_count: 1}
      - {kind: schistocytes, types: [schistocyte], of: red blood cell, min_share: 1.0}
      - {kind: unknown_cells, unknown: true, of: assessed, min_count: 3, min_share: 10.0}

A rule counts the cells whose type is a kind of one of its ``types`` (``vocab.is_a``: ``blast``
covers myeloblasts, lymphoblasts and monoblasts) or whose lineage is one of them, or, with
``unknown: true``, the cells the trust state calls unknown (:mod:`unihema.trust`). Only cells
whose own type has at least ``min_probability`` count. ``share`` is that count in percent of
the cells of lineage ``of`` (default: the lineage of the first type; ``"assessed"``: the
cells that carry an unknown score; ``"all"``: every cell). A rule fires when ``count >=
min_count`` and, when ``min_share`` is set, ``share >= min_share``.

:func:`review_flags` applies a policy to a smear's cells: ``[ReviewFlag]``; the smear
``needs_review`` when any fired. Each flag keeps ``kind``, ``count``, ``share`` (percent,
``None`` without a denominator), ``threshold`` (the rule's ``min_count`` / ``min_share``) and
a sentence, ``reason``, for the person reading the report.

Defaults (:data:`DEFAULT_POLICY`), chosen to miss nothing a smear review is for, at the cost
of flagging smears of healthy people now and then (a single reactive lymphocyte is enough):

=====================  ===================================================  ==============
kind                   cells                                                fires at
=====================  ===================================================  ==============
blasts                 blast (myeloblast, lymphoblast, monoblast)           1 cell
promyelocytes          promyelocyte (abnormal promyelocyte)                 1 cell
atypical_lymphocytes   atypical lymphocyte                                  1 cell
parasites              malaria parasite (any stage), infected red cell      1 cell
schistocytes           schistocyte                                          1 % of red cells
unknown_cells          cells of a type the model was not trained on         3 cells and 10 %
                                                                            of assessed cells
=====================  ===================================================  ==============

Schistocytes: ICSH 2015 (Palmer et al.) counts above 1 % of red cells as clinically relevant.
Unknown cells: the unknown threshold lets through about 5 % of the known cells it was fitted
on (95 % true-positive rate), so a few per smear are expected; more than a tenth is not.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from unihema.analysis.records import CellRecord

#: ``of`` values that are not a lineage
SPECIAL_DENOMINATORS = ("assessed", "all")
#: keys of one rule, with their meaning
RULE_KEYS = {
    "kind": "the flag's name, e.g. blasts",
    "types": "cell types (canonical names; a kind of one counts: blast covers myeloblast)",
    "unknown": "true: count the cells the trust state calls unknown instead of types",
    "of": "the lineage the share is a percentage of ('assessed': cells with an unknown "
          "score; 'all': every cell); default the first type's lineage",
    "min_count": "fires at this many cells or more (default 1)",
    "min_share": "and at this share (percent of 'of') or more; null: no share condition",
    "min_probability": "count only cells whose type has at least this probability (default 0)",
    "label": "words for the reason (default: the kind with spaces)",
}


@dataclass(frozen=True)
class FlagRule:
    """One reason to review a smear (module docstring)."""

    kind: str
    types: Tuple[str, ...] = ()
    unknown: bool = False
    of: str = ""
    min_count: int = 1
    min_share: Optional[float] = None
    min_probability: float = 0.0
    label: str = ""

    def __post_init__(self) -> None:
        from unihema.data import vocab

        where = f"flag rule '{self.kind}'"
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError(f"flag rule: 'kind' must be a non-empty name, got {self.kind!r}")
        if bool(self.types) == bool(self.unknown):
            raise ValueError(f"{where}: give either 'types' (cell types) or 'unknown: true', "
                             f"not {'both' if self.types else 'neither'}")
        object.__setattr__(self, "types", tuple(self.types))
        for t in self.types:
            if not isinstance(t, str) or not vocab.is_canonical(t):
                close = difflib.get_close_matches(str(t), vocab.names(), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ValueError(f"{where}: '{t}' is not a canonical cell type{hint}; see "
                                 f"unihema.data.vocab")
        if isinstance(self.min_count, bool) or not isinstance(self.min_count, int) \
                or self.min_count < 1:
            raise ValueError(f"{where}: 'min_count' must be an integer >= 1, got "
                             f"{self.min_count!r}")
        if self.min_share is not None and not (
                isinstance(self.min_share, (int, float)) and not isinstance(self.min_share, bool)
                and 0 <= self.min_share <= 100):
            raise ValueError(f"{where}: 'min_share' must be a percentage in [0, 100] or null, "
                             f"got {self.min_share!r}")
        if not (isinstance(self.min_probability, (int, float))
                and 0 <= self.min_probability <= 1):
            raise ValueError(f"{where}: 'min_probability' must be in [0, 1], got "
                             f"{self.min_probability!r}")
        of = self.of or (self._lineage(self.types[0]) if self.types else "assessed")
        if of not in SPECIAL_DENOMINATORS and not vocab.is_canonical(of):
            raise ValueError(f"{where}: 'of' must be a lineage or one of "
                             f"{SPECIAL_DENOMINATORS}, got {of!r}")
        object.__setattr__(self, "of", of)

    @staticmethod
    def _lineage(cell_type: str) -> str:
        """The broadest term of a canonical type (as :func:`unihema.analysis.summary.
        lineage_of`, which imports this module)."""
        from unihema.data import vocab

        return (vocab.ancestors(cell_type) or [cell_type])[-1]

    @property
    def words(self) -> str:
        return self.label or self.kind.replace("_", " ")

    @property
    def threshold(self) -> Dict[str, Any]:
        return {"min_count": self.min_count, "min_share": self.min_share}

    def counts(self, cell: CellRecord) -> bool:
        """Whether ``cell`` is one this rule counts."""
        from unihema.data import vocab

        if self.unknown:
            hit = bool(getattr(cell, "unknown", False))
        else:
            hit = any(cell.type == t or cell.lineage == t
                      or (vocab.is_canonical(cell.type) and vocab.is_a(cell.type, t))
                      for t in self.types)
        if hit and self.min_probability > 0:
            p = cell.probability
            hit = p is None or p >= self.min_probability
        return hit

    def denominator(self, cells: Sequence[CellRecord]) -> int:
        if self.of == "all":
            return len(cells)
        if self.of == "assessed":
            return sum(getattr(c, "unknown_score", None) is not None for c in cells)
        return sum(c.lineage == self.of for c in cells)


@dataclass(frozen=True)
class FlagPolicy:
    """The rules a smear is flagged by (module docstring)."""

    rules: Tuple[FlagRule, ...]

    def __post_init__(self) -> None:
        kinds = [r.kind for r in self.rules]
        dup = sorted({k for k in kinds if kinds.count(k) > 1})
        if dup:
            raise ValueError(f"flag policy: kinds must be distinct, got {dup} twice")
        object.__setattr__(self, "rules", tuple(self.rules))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], source: str = "flag policy") -> "FlagPolicy":
        """Validated policy from ``{"rules": [{...}, ...]}``; errors name ``source``, the
        rule and the key."""
        if not isinstance(raw, Mapping) or set(raw) - {"rules"} or \
                not isinstance(raw.get("rules"), list):
            raise ValueError(f"{source}: expected a mapping with one key 'rules' (a list of "
                             f"rules with keys {', '.join(RULE_KEYS)})")
        rules = []
        for i, r in enumerate(raw["rules"]):
            where = f"{source}: rules[{i}]"
            if not isinstance(r, Mapping):
                raise ValueError(f"{where}: expected a mapping, got {type(r).__name__}")
            bad = [k for k in r if k not in RULE_KEYS]
            if bad:
                close = difflib.get_close_matches(bad[0], list(RULE_KEYS), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ValueError(f"{where}: unknown key '{bad[0]}'{hint}; valid keys: "
                                 f"{', '.join(RULE_KEYS)}")
            try:
                rules.append(FlagRule(**{**r, "types": tuple(r.get("types") or ())}))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{where}: {exc}") from None
        try:
            return cls(tuple(rules))
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    def to_dict(self) -> Dict[str, Any]:
        return {"rules": [{k: (list(v) if isinstance(v, tuple) else v)
                           for k, v in asdict(r).items()} for r in self.rules]}


def load_policy(path: Union[str, Path]) -> FlagPolicy:
    """A policy file (``.yaml``, ``.yml`` or ``.json``; module docstring), validated."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such flag policy file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        raw = json.loads(text)
    else:
        import yaml

        raw = yaml.safe_load(text)
    return FlagPolicy.from_dict(raw, str(path))


DEFAULT_POLICY = FlagPolicy((
    FlagRule("blasts", ("blast",)),
    FlagRule("promyelocytes", ("promyelocyte",)),
    FlagRule("atypical_lymphocytes", ("atypical lymphocyte",)),
    FlagRule("parasites", ("malaria parasite", "infected red blood cell"),
             of="red blood cell"),
    FlagRule("schistocytes", ("schistocyte",), min_share=1.0),
    FlagRule("unknown_cells", unknown=True, of="assessed", min_count=3, min_share=10.0,
             label="cells of no type the model was trained on"),
))


@dataclass
class ReviewFlag:
    """A rule that fired on a smear: ``kind``, ``count`` of cells, their ``share`` (percent
    of the rule's ``of`` cells, ``None`` without any), the rule's ``threshold`` and the
    ``reason`` in words."""

    kind: str
    count: int
    share: Optional[float]
    threshold: Dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _of_words(of: str) -> str:
    return {"assessed": "assessed cells", "all": "cells"}.get(of, of + "s")


def review_flags(cells: Sequence[CellRecord], policy: FlagPolicy = DEFAULT_POLICY
                 ) -> List[ReviewFlag]:
    """The rules of ``policy`` that fire on ``cells`` (one smear), in the policy's order."""
    out = []
    for rule in policy.rules:
        count = sum(rule.counts(c) for c in cells)
        if count < rule.min_count:
            continue
        total = rule.denominator(cells)
        share = 100.0 * count / total if total else None
        if rule.min_share is not None and (share is None or share < rule.min_share):
            continue
        at = f"{rule.min_count} cell{'s' if rule.min_count > 1 else ''}"
        if rule.min_share is not None:
            at = (f"{rule.min_share:g} % of {_of_words(rule.of)}" if rule.min_count == 1
                  else f"{at} and {rule.min_share:g} % of {_of_words(rule.of)}")
        share_txt = "" if share is None else f" ({share:.1f} % of {_of_words(rule.of)})"
        n_txt = f"{count} cell{'s' if count != 1 else ''}"
        out.append(ReviewFlag(rule.kind, count, None if share is None else round(share, 3),
                              rule.threshold,
                              f"{rule.words}: {n_txt}{share_txt}; flagged from {at}"))
    return out


def review(cells: Sequence[CellRecord], policy: FlagPolicy = DEFAULT_POLICY
           ) -> Dict[str, Any]:
    """``{"needs_review": bool, "flags": [flag dicts], "policy": kinds checked}``: what
    ``summary.json`` holds under ``review``."""
    flags = review_flags(cells, policy)
    return {"needs_review": bool(flags), "flags": [f.to_dict() for f in flags],
            "checked": [r.kind for r in policy.rules]}


__all__ = ["DEFAULT_POLICY", "FlagPolicy", "FlagRule", "RULE_KEYS", "ReviewFlag",
           "load_policy", "review", "review_flags"]
