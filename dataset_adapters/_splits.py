"""Splits of the adapters: the seeded split of sources without an official one, split folders.

* :data:`FRACTIONS`: the train / val / test fractions of every source without an official
  split (:data:`unihema.data.splits.DEFAULT_FRACTIONS`, 70/10/20; the generic adapter uses the
  same constant).
* :func:`assign_splits`: ``key -> split`` by :func:`unihema.data.splits.seeded_split`
  (deterministic, order-free, patient-aware); :func:`count_splits`: how many keys each split
  holds, which is what ``write_example`` returns.
* :func:`split_from_path`, :func:`domain_of`, :func:`files_by_split`: layouts whose folders
  name the split (``train/``, ``valid/``, ``test/``...), with the seeded split as fallback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Hashable, Iterable, List, Mapping, Optional, Sequence

from unihema.data.catalog import DataError, DatasetAdapter
from unihema.data.splits import DEFAULT_FRACTIONS, split_of

#: Split fractions (train / val / test) of sources without an official split.
FRACTIONS: Mapping[str, float] = DEFAULT_FRACTIONS

#: folder names that carry an official split, and the split they mean
SPLIT_NAMES: Dict[str, str] = {"train": "train", "training": "train", "val": "val",
                               "valid": "val", "validation": "val", "test": "test",
                               "testing": "test"}


def assign_splits(keys: Sequence[str], groups: Optional[Sequence[Optional[Hashable]]] = None,
                  *, seed: int = 0, fractions: Mapping[str, float] = FRACTIONS
                  ) -> Dict[str, str]:
    """``key -> split`` by :func:`unihema.data.splits.seeded_split` (70/10/20, seed 0).

    ``keys`` name the items stably (relative paths, sample ids; no two alike); ``groups``
    gives each item's patient or ``None``: one patient never spans two splits. The adapters'
    ``write_example`` use the same function, so an example's expected counts follow the
    adapter's own rule.
    """
    keys = list(keys)
    pairs = list(zip(keys, groups if groups is not None else [None] * len(keys)))
    return split_of(pairs, dict(fractions), seed, group=lambda kv: kv[1],
                    key=lambda kv: str(kv[0]))


def count_splits(assignment: Mapping[str, str], splits: Iterable[str]) -> Dict[str, int]:
    """Number of keys per split of an ``assignment`` (``key -> split``); every split of
    ``splits`` is listed, zero included.

    Raises:
        KeyError: the assignment names a split outside ``splits``.
    """
    out = {s: 0 for s in splits}
    for key, split in assignment.items():
        if split not in out:
            raise KeyError(f"'{key}' is assigned to split '{split}', not one of {list(out)}")
        out[split] += 1
    return out


def split_from_path(rel: Path) -> Optional[str]:
    """The split named by a folder of a root-relative path (``HCM/1000x/train/a.xml`` ->
    ``train``), or ``None``."""
    for part in rel.parts[:-1]:
        if part.lower() in SPLIT_NAMES:
            return SPLIT_NAMES[part.lower()]
    return None


def domain_of(rel: Path) -> str:
    """The folders of a root-relative path before its split folder (``HCM/1000x``), ``""``."""
    out = []
    for part in rel.parts[:-1]:
        if part.lower() in SPLIT_NAMES or part.lower() in ("images", "annotations", "labels",
                                                           "jpegimages", "xml"):
            break
        out.append(part)
    return "/".join(out)


def files_by_split(adapter: DatasetAdapter, pattern: str, split: str,
                   exclude: Sequence[str] = (),
                   skip: Optional[Callable[[Path], bool]] = None) -> List[Path]:
    """Files of ``split`` matching ``pattern`` below the root, split by their folders.

    When some folder of the layout names a split (``train``, ``valid``, ``test``...), that is
    the official split and a file outside any split folder is reported. When none does, the
    files are split by :func:`assign_splits` over their root-relative paths (70/10/20,
    seed 0). Hidden files, names in ``exclude`` and files for which ``skip`` is true are
    skipped.
    """
    files = sorted(p for p in adapter.root.rglob(pattern)
                   if p.is_file() and p.name not in exclude and not (skip and skip(p))
                   and not any(part.startswith(".") for part in p.relative_to(adapter.root).parts))
    if not files:
        raise DataError(f"{adapter.name}: no {pattern} files under {adapter.root}. Expected "
                        f"layout:\n{adapter.layout()}")
    rels = [p.relative_to(adapter.root) for p in files]
    official = [split_from_path(r) for r in rels]
    if any(s is not None for s in official):
        out = []
        for path, s in zip(files, official):
            if s is None:
                adapter.report(path, f"lies in no split folder ({', '.join(SPLIT_NAMES)})")
            elif s == split:
                out.append(path)
        return out
    assignment = assign_splits([r.as_posix() for r in rels])
    return [p for p, r in zip(files, rels) if assignment[r.as_posix()] == split]


class Rooted:
    """``adapter`` seen with another root (for :func:`files_by_split` below a sub-folder);
    everything else, ``report`` included, is the adapter's own."""

    def __init__(self, adapter: DatasetAdapter, root: Path) -> None:
        self._adapter, self.root = adapter, root

    def __getattr__(self, name):
        return getattr(self._adapter, name)
