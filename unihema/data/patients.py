"""Patient bags: the cells of one patient (or smear) with the patient's labels and findings.

A diagnosis is made per patient, not per cell. A :class:`PatientBag` groups a patient's cell
images with

* ``labels``: canonical terms of :mod:`unihema.data.vocab`, the diagnosis first
  (``["pml::rara"]``, ``["acute promyelocytic leukemia"]``); ``[]`` when unknown;
* ``findings``: named genetic alterations (``["PML::RARA", "FLT3-ITD"]``), as the source
  writes them in the usual notation (fusions with ``::``); ``[]`` means none was found (or
  none is known: ``meta["findings_known"] = False`` says which);
* ``cells``: one image path per cell crop (``kind == "crop"``) or per smear field
  (``kind == "field"``);
* ``cell_types``: the type of each cell when known (synthetic truth, a typed source such as
  APL-AML), else ``None``.

A cohort is stored as one JSON object per line (``cohort.jsonl``, :func:`write_cohort`), cell
paths relative to the file's folder when they lie under it; :func:`load_cohort` reads it back
with absolute paths and names ``file:line: field`` for every bad entry. Patient-level folds
(:func:`patient_folds`) are stratified by the first label, never put a patient in two folds,
and are written to ``folds.json`` and reused so every run scores the same partition.
:func:`findings_vector` turns findings into a multi-hot vector over a :class:`FindingsVocab`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from unihema.data import vocab as vocabulary
from unihema.data.catalog import DataError
from unihema.utils import atomic_write_text, jsonable

#: file names inside a cohort folder
COHORT_FILE = "cohort.jsonl"
SUMMARY_FILE = "cohort.json"
FOLDS_FILE = "folds.json"
#: what ``findings_text`` says for a patient without findings
NO_FINDINGS = "no alteration found"
#: the kinds of image a bag's cells may be
KINDS = ("crop", "field")
#: vocabulary categories whose terms name a cell (a record's label is then its cell type)
CELL_CATEGORIES = ("white cell", "red cell", "platelet", "parasite")

PathLike = Union[str, Path]


@dataclass
class PatientBag:
    """One patient: cell images plus patient-level labels and genetic findings.

    ``cells`` and ``cell_types`` are aligned (same length). Paths are absolute once loaded by
    :func:`load_cohort`; a bag built in memory may hold paths relative to its cohort root.
    """

    patient_id: str
    labels: List[str] = field(default_factory=list)
    findings: List[str] = field(default_factory=list)
    cells: List[str] = field(default_factory=list)
    cell_types: List[Optional[str]] = field(default_factory=list)
    meta: Dict[str, Any] = field(default_factory=dict)
    #: ``"crop"`` (one cell per image) or ``"field"`` (whole smear fields)
    kind: str = "crop"

    @property
    def diagnosis(self) -> Optional[str]:
        """The first label, or ``None`` when the patient has none."""
        return self.labels[0] if self.labels else None

    def findings_text(self) -> str:
        """The findings as one line of text: ``"PML::RARA; FLT3-ITD"``, or
        ``"no alteration found"`` when there are none."""
        return "; ".join(self.findings) if self.findings else NO_FINDINGS

    def validate(self) -> List[str]:
        """Contract violations, one message per field (empty when the bag is valid)."""
        problems = []
        if not isinstance(self.patient_id, str) or not self.patient_id:
            problems.append(f"patient_id: expected a non-empty string, got {self.patient_id!r}")
        for name in ("labels", "findings", "cells"):
            value = getattr(self, name)
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                problems.append(f"{name}: expected a list of non-empty strings, got {value!r}")
        if isinstance(self.labels, list):
            for lab in self.labels:
                if isinstance(lab, str) and not vocabulary.is_canonical(lab):
                    problems.append(f"labels: '{lab}' is not a canonical term "
                                    f"(unihema.data.vocab)")
        if isinstance(self.findings, list) and len(set(self.findings)) != len(self.findings):
            problems.append(f"findings: listed twice in {self.findings}")
        types = self.cell_types
        if not isinstance(types, list) or not all(t is None or isinstance(t, str) for t in types):
            problems.append(f"cell_types: expected a list of strings or nulls, got {types!r}")
        elif isinstance(self.cells, list) and len(types) != len(self.cells):
            problems.append(f"cell_types: {len(types)} entries for {len(self.cells)} cells")
        if not isinstance(self.meta, dict):
            problems.append(f"meta: expected an object, got {type(self.meta).__name__}")
        if self.kind not in KINDS:
            problems.append(f"kind: expected one of {list(KINDS)}, got {self.kind!r}")
        return problems

    def to_dict(self, root: Optional[PathLike] = None) -> Dict[str, Any]:
        """A JSON-ready dict; cell paths under ``root`` are written relative to it."""
        cells = list(self.cells)
        if root is not None:
            base = Path(root).resolve()
            cells = [_relative(c, base) for c in cells]
        return {"patient_id": self.patient_id, "labels": list(self.labels),
                "findings": list(self.findings), "kind": self.kind, "cells": cells,
                "cell_types": list(self.cell_types), "meta": jsonable(self.meta)}


def _relative(path: str, base: Path) -> str:
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    try:
        return p.resolve().relative_to(base).as_posix()
    except ValueError:
        return str(p)


# ----------------------------------------------------------------------------- findings
@dataclass(frozen=True)
class FindingsVocab:
    """An ordered list of finding names; position ``i`` is component ``i`` of a findings
    vector. Names match case-insensitively (``"npm1"`` is ``"NPM1"``)."""

    names: Tuple[str, ...]

    def __post_init__(self) -> None:
        keys = [_finding_key(n) for n in self.names]
        if len(set(keys)) != len(keys):
            dups = sorted({n for n, k in zip(self.names, keys) if keys.count(k) > 1})
            raise ValueError(f"findings vocabulary lists names twice: {dups}")

    @classmethod
    def from_bags(cls, bags: Iterable[PatientBag], min_count: int = 1) -> "FindingsVocab":
        """Every finding seen in at least ``min_count`` bags, most frequent first (ties by
        upper-cased name), spelled as first seen."""
        counts: Counter = Counter()
        spelling: Dict[str, str] = {}
        for bag in bags:
            for f in bag.findings:
                k = _finding_key(f)
                spelling.setdefault(k, f)
                counts[k] += 1
        keep = sorted((k for k, n in counts.items() if n >= min_count),
                      key=lambda k: (-counts[k], k))
        return cls(tuple(spelling[k] for k in keep))

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Position of ``name``; ``KeyError`` naming the vocabulary when it is not in it."""
        lookup = {_finding_key(n): i for i, n in enumerate(self.names)}
        i = lookup.get(_finding_key(name))
        if i is None:
            raise KeyError(f"finding '{name}' is not in the vocabulary {list(self.names)}")
        return i

    def vector(self, findings: Sequence[str], unknown: str = "raise") -> np.ndarray:
        """Multi-hot ``[len(self)]`` float32 of ``findings``; ``unknown="ignore"`` skips names
        outside the vocabulary instead of raising ``KeyError``."""
        if unknown not in ("raise", "ignore"):
            raise ValueError(f"unknown must be 'raise' or 'ignore', got {unknown!r}")
        out = np.zeros(len(self.names), np.float32)
        lookup = {_finding_key(n): i for i, n in enumerate(self.names)}
        for f in findings:
            i = lookup.get(_finding_key(f))
            if i is None:
                if unknown == "raise":
                    raise KeyError(f"finding '{f}' is not in the vocabulary {list(self.names)}")
                continue
            out[i] = 1.0
        return out


def _finding_key(name: str) -> str:
    return " ".join(str(name).split()).upper()


def findings_vector(findings: Sequence[str], vocab: Union[FindingsVocab, Sequence[str]],
                    unknown: str = "raise") -> np.ndarray:
    """Multi-hot ``[len(vocab)]`` float32 of ``findings`` over ``vocab`` (a
    :class:`FindingsVocab` or a list of names); see :meth:`FindingsVocab.vector`."""
    if not isinstance(vocab, FindingsVocab):
        vocab = FindingsVocab(tuple(vocab))
    return vocab.vector(findings, unknown=unknown)


# ----------------------------------------------------------------------------- cohort files
def write_cohort(root: PathLike, bags: Sequence[PatientBag], name: str) -> Path:
    """Write ``root/cohort.jsonl`` (one patient per line) and ``root/cohort.json`` (the
    cohort's ``name`` and counts), each atomically; returns the ``.jsonl`` path.

    Bags are validated first (``ValueError`` naming the patient and field); patient ids must
    be unique. Cell paths under ``root`` are written relative to it.
    """
    root = Path(root)
    seen = set()
    for bag in bags:
        problems = bag.validate()
        if problems:
            raise ValueError(f"patient '{bag.patient_id}': " + "; ".join(problems))
        if bag.patient_id in seen:
            raise ValueError(f"patient '{bag.patient_id}' appears twice in cohort '{name}'")
        seen.add(bag.patient_id)
    root.mkdir(parents=True, exist_ok=True)
    base = root.resolve()
    lines = [json.dumps(b.to_dict(base), ensure_ascii=False) for b in bags]
    path = atomic_write_text(root / COHORT_FILE, "".join(line + "\n" for line in lines))
    summary = {"name": name, "file": COHORT_FILE, **cohort_summary(bags)}
    atomic_write_text(root / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    return path


def cohort_summary(bags: Sequence[PatientBag]) -> Dict[str, Any]:
    """Counts of a cohort: patients, cells, patients per diagnosis, findings frequencies."""
    diag = Counter(b.diagnosis or "unknown" for b in bags)
    finds = Counter(f for b in bags for f in b.findings)
    n_cells = [len(b.cells) for b in bags]
    return {"patients": len(bags), "cells": int(sum(n_cells)),
            "cells_per_patient": [min(n_cells), max(n_cells)] if n_cells else [0, 0],
            "diagnoses": dict(sorted(diag.items())),
            "findings": dict(sorted(finds.items(), key=lambda kv: (-kv[1], kv[0])))}


_FIELDS = {"patient_id", "labels", "findings", "cells", "cell_types", "meta", "kind"}


def load_cohort(path_or_root: PathLike, check_files: bool = False) -> List[PatientBag]:
    """The bags of a cohort file (or of ``<root>/cohort.jsonl``), cell paths made absolute.

    Raises :class:`~unihema.data.catalog.DataError` naming ``file:line: field`` and what was
    expected for the first bad line (bad JSON, a missing or mistyped field, a non-canonical
    label, a repeated patient id); with ``check_files`` also for a cell image that is missing.
    """
    path = Path(path_or_root)
    if path.is_dir():
        path = path / COHORT_FILE
    if not path.is_file():
        raise DataError(f"{path}: no cohort file (expected {COHORT_FILE}: one JSON object per "
                        f"patient with fields {sorted(_FIELDS)})")
    base = path.parent.resolve()
    bags: List[PatientBag] = []
    first: Dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
            extra = sorted(set(obj) - _FIELDS)
            if extra:
                raise DataError(f"{where}: unknown field(s) {extra}; fields: {sorted(_FIELDS)}")
            if "patient_id" not in obj:
                raise DataError(f"{where}: patient_id: missing")
            cells = obj.get("cells", [])
            types = obj.get("cell_types", [None] * len(cells) if isinstance(cells, list) else [])
            bag = PatientBag(patient_id=obj["patient_id"], labels=obj.get("labels", []),
                             findings=obj.get("findings", []), cells=cells, cell_types=types,
                             meta=obj.get("meta", {}), kind=obj.get("kind", "crop"))
            problems = bag.validate()
            if problems:
                raise DataError(f"{where}: " + "; ".join(problems))
            if bag.patient_id in first:
                raise DataError(f"{where}: patient_id: '{bag.patient_id}' is listed twice "
                                f"(first at line {first[bag.patient_id]})")
            first[bag.patient_id] = line_no
            bag.cells = [c if Path(c).is_absolute() else str(base / c) for c in bag.cells]
            if check_files:
                for i, c in enumerate(bag.cells):
                    if not Path(c).is_file():
                        raise DataError(f"{where}: cells[{i}]: no image at {c}")
            bags.append(bag)
    return bags


# ----------------------------------------------------------------------------- folds
def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\x00{key}".encode("utf-8")).hexdigest()


def draw_folds(bags: Sequence[PatientBag], k: int = 5, seed: int = 0) -> List[List[str]]:
    """``k`` folds of patient ids, stratified by the first label (``""`` when none).

    Deterministic and independent of the input order: within each stratum (taken in name
    order) patients are ordered by a hash of ``(seed, patient id)`` and dealt round-robin,
    continuing from where the previous stratum stopped, so fold sizes differ by at most one
    and each diagnosis is spread as evenly as its count allows. Each fold is sorted.
    """
    if k < 2:
        raise ValueError(f"k must be >= 2 folds, got {k}")
    ids = [b.patient_id for b in bags]
    if len(set(ids)) != len(ids):
        dups = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"patients listed twice: {dups}")
    if len(ids) < k:
        raise ValueError(f"{len(ids)} patients cannot fill {k} folds")
    strata: Dict[str, List[str]] = {}
    for b in bags:
        strata.setdefault(b.diagnosis or "", []).append(b.patient_id)
    folds: List[List[str]] = [[] for _ in range(k)]
    j = 0
    for name in sorted(strata):
        for pid in sorted(strata[name], key=lambda p: (_rank(seed, p), p)):
            folds[j % k].append(pid)
            j += 1
    return [sorted(f) for f in folds]


def patient_folds(bags: Sequence[PatientBag], k: int = 5, seed: int = 0,
                  path: Optional[PathLike] = None) -> List[List[str]]:
    """Patient ids per fold (see :func:`draw_folds`); with ``path`` (a ``folds.json``) the
    folds are read from it when it exists, after checking it holds ``k`` folds, no patient
    twice and exactly the patients of ``bags`` (``DataError`` naming the file and the
    difference otherwise), and written to it (atomically) when it does not."""
    if path is None:
        return draw_folds(bags, k, seed)
    path = Path(path)
    if path.is_file():
        return read_folds(path, [b.patient_id for b in bags], k)
    folds = draw_folds(bags, k, seed)
    doc = {"k": k, "seed": seed, "stratified_by": "first label", "patients": len(bags),
           "folds": folds}
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
    return folds


def read_folds(path: PathLike, patients: Sequence[str], k: Optional[int] = None
               ) -> List[List[str]]:
    """The folds of a ``folds.json``, validated against the patient ids ``patients``."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    folds = doc.get("folds") if isinstance(doc, dict) else None
    if not isinstance(folds, list) or not all(isinstance(f, list) and
                                              all(isinstance(p, str) for p in f) for f in folds):
        raise DataError(f"{path}: folds: expected a list of lists of patient ids")
    if k is not None and len(folds) != k:
        raise DataError(f"{path}: folds: holds {len(folds)} folds, {k} were asked for "
                        f"(delete the file to draw new folds)")
    where: Dict[str, int] = {}
    for i, fold in enumerate(folds):
        for p in fold:
            if p in where:
                raise DataError(f"{path}: folds: patient '{p}' is in folds {where[p]} and {i}")
            where[p] = i
    missing = sorted(set(patients) - set(where))
    extra = sorted(set(where) - set(patients))
    if missing or extra:
        raise DataError(f"{path}: folds: the file's patients differ from the cohort's "
                        f"({len(missing)} missing from the file, e.g. {missing[:3]}; "
                        f"{len(extra)} not in the cohort, e.g. {extra[:3]}); delete the file "
                        f"to draw new folds")
    return [list(f) for f in folds]


def fold_of(folds: Sequence[Sequence[str]]) -> Dict[str, int]:
    """``patient id -> fold index``."""
    return {p: i for i, f in enumerate(folds) for p in f}


# ----------------------------------------------------------------------------- records
def adapter_bags(adapter: Any) -> List[PatientBag]:
    """The patient bags of a dataset adapter: its own ``bags()`` when it has one (aml_hehr,
    apl_aml: findings included), else its records of every split grouped by
    :func:`bags_from_records` (records need a ``patient_id``)."""
    if callable(getattr(adapter, "bags", None)):
        return adapter.bags()
    records = [s for split in adapter.splits for s in adapter.load(split)]
    return bags_from_records(records)


def dataset_bags(name: str, root: PathLike, *, on_error: str = "raise",
                 **options: Any) -> List[PatientBag]:
    """Patient bags of the registered dataset ``name`` at ``root`` (:func:`adapter_bags` of
    :func:`unihema.data.catalog.get_adapter`; ``options`` go to the adapter, e.g. ``spec=``
    of the generic adapter)."""
    from unihema.data.catalog import get_adapter

    return adapter_bags(get_adapter(name, root, on_error=on_error, **options))


def bags_from_records(records: Iterable[Any], key: str = "patient_id",
                      label_key: str = "patient_label",
                      findings_key: str = "findings") -> List[PatientBag]:
    """Group dataset records (:class:`~unihema.data.sample.UnifiedSample`) into patient bags.

    The patient is ``record.<key>`` (or ``record.meta[key]``); a record without one raises
    ``DataError`` naming it. The patient's diagnosis is ``meta[label_key]`` (every record of a
    patient must agree), its findings ``meta[findings_key]`` (a list, or text separated by
    ``;`` / ``,``) when present. A record's ``label`` is taken as its cell type when it is a
    cell term (vocabulary categories :data:`CELL_CATEGORIES`); a patient-level label on the
    cells (a weak label) is not a type, so the type is ``None``. Bags come in order of first
    appearance; ``meta`` holds ``dataset``, ``splits`` and any meta value all cells share
    (``group``...).
    """
    bags: Dict[str, PatientBag] = {}
    shared: Dict[str, Dict[str, Any]] = {}
    skip = {"raw_label", "kind", "license", label_key, findings_key}
    for rec in records:
        meta = dict(getattr(rec, "meta", None) or {})
        pid = getattr(rec, key, None) or meta.get(key)
        name = f"{getattr(rec, 'dataset', '?')}/{getattr(rec, 'sample_id', '?')}"
        if not pid:
            raise DataError(f"record {name}: no {key}; cannot group it into a patient")
        pid = str(pid)
        label = meta.get(label_key)
        findings = parse_findings(meta.get(findings_key))
        ctype = getattr(rec, "label", None)
        if ctype is not None and not (vocabulary.is_canonical(ctype)
                                      and vocabulary.category(ctype) in CELL_CATEGORIES):
            ctype = None
        bag = bags.get(pid)
        if bag is None:
            bag = bags[pid] = PatientBag(pid, [label] if label else [], findings,
                                         kind=str(meta.get("kind", "crop")))
            bag.meta["dataset"] = getattr(rec, "dataset", None)
            bag.meta["splits"] = []
            shared[pid] = {k: v for k, v in meta.items() if k not in skip
                           and not k.startswith("classes_")}
        elif (label or None) != bag.diagnosis:
            raise DataError(f"record {name}: {label_key} '{label}' differs from patient "
                            f"'{pid}''s earlier '{bag.diagnosis}'")
        else:
            for f in findings:
                if f not in bag.findings:
                    bag.findings.append(f)
            shared[pid] = {k: v for k, v in shared[pid].items() if meta.get(k) == v}
        split = getattr(rec, "split", None)
        if split and split not in bag.meta["splits"]:
            bag.meta["splits"].append(split)
        bag.cells.append(str(rec.image_path))
        bag.cell_types.append(ctype)
    for pid, bag in bags.items():
        bag.meta.update(shared[pid])
    return list(bags.values())


def parse_findings(value: Any) -> List[str]:
    """Findings from a table cell or a meta value: a list, or text separated by ``;`` or
    ``,`` (``"PML::RARA; FLT3-ITD"``); empty, ``none`` and ``NO_FINDINGS`` give ``[]``.
    Whitespace is collapsed and repeats dropped, in order."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.replace(",", ";")
        items = [] if text.strip().lower() in ("", "none", "-", "na", "n/a", NO_FINDINGS) \
            else text.split(";")
    elif isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        raise ValueError(f"findings: expected a list or text, got {type(value).__name__}")
    out: List[str] = []
    for item in items:
        name = " ".join(item.split())
        if name and name not in out:
            out.append(name)
    return out


def label_counts(bags: Sequence[PatientBag]) -> Mapping[str, int]:
    """Patients per diagnosis (``"unknown"`` when a patient has no label), by name."""
    return dict(sorted(Counter(b.diagnosis or "unknown" for b in bags).items()))
