"""Seeded, patient-aware splits for datasets that have no official split.

:func:`seeded_split` is deterministic and independent of the input order: every group (a
patient, or the item itself when it has none) is ordered by a hash of ``(seed, group key)``,
then groups are dealt to the splits in that order until each split holds its fraction of the
*items*. So

* the same items and seed give the same split on every machine and Python version (SHA-256,
  not Python's salted ``hash``), whatever order the files were listed in;
* all items of one patient land in one split (no patient leakage);
* split sizes follow the fractions as closely as whole groups allow.

Adding or removing items may move other items to another split (the split is exact for a
fixed set of files, which is what a published dataset is). Adapters that use it say so in their
docstring, with the fractions and the seed.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Dict, Hashable, List, Mapping, Optional, Sequence, TypeVar

T = TypeVar("T")

#: The default fractions.
DEFAULT_FRACTIONS: Mapping[str, float] = {"train": 0.7, "val": 0.1, "test": 0.2}


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\x00{key}".encode("utf-8")).hexdigest()


def seeded_split(
    items: Sequence[T],
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    group: Optional[Callable[[T], Optional[Hashable]]] = None,
    key: Callable[[T], str] = str,
) -> Dict[str, List[T]]:
    """Split ``items`` into named parts.

    Args:
        items: the things to split (file names, sample ids, records...).
        fractions: split name -> fraction of the items; non-negative, summing to 1.
        seed: changes the assignment; the adapter documents the one it uses.
        group: item -> patient id (or any grouping key), or ``None`` when the item stands
            alone. Items of one group always share a split.
        key: item -> stable text identity used for hashing (default ``str``); two items with
            the same key are an error (the split would depend on their order).

    Returns:
        split name -> its items, in the order they were given; every split named in
        ``fractions`` is present (possibly empty).

    Raises:
        ValueError: bad fractions or duplicate item keys.
    """
    if not fractions:
        raise ValueError("fractions is empty")
    if any(f < 0 for f in fractions.values()):
        raise ValueError(f"fractions must be >= 0, got {dict(fractions)}")
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"fractions must sum to 1, got {total:g} ({dict(fractions)})")
    keys = [key(it) for it in items]
    if len(set(keys)) != len(keys):
        dups = sorted({k for k in keys if keys.count(k) > 1})[:5]
        raise ValueError(f"items with the same key {dups}: the split would depend on order")
    groups: Dict[str, List[int]] = {}
    for i, it in enumerate(items):
        g = group(it) if group is not None else None
        gkey = f"item:{keys[i]}" if g is None else f"group:{g}"
        groups.setdefault(gkey, []).append(i)
    order = sorted(groups, key=lambda g: (_rank(seed, g), g))
    names = list(fractions)
    n = len(items)
    # cumulative item targets: split j ends once this many items are dealt
    bounds, acc = [], 0.0
    for name in names:
        acc += fractions[name]
        bounds.append(acc * n)
    assigned: Dict[int, str] = {}
    dealt, j = 0, 0
    for g in order:
        members = groups[g]
        # move on while the current split is full (half a group of slack rounds to nearest)
        while j < len(names) - 1 and dealt + len(members) / 2.0 > bounds[j]:
            j += 1
        for i in members:
            assigned[i] = names[j]
        dealt += len(members)
    out: Dict[str, List[T]] = {name: [] for name in names}
    for i, it in enumerate(items):
        out[assigned[i]].append(it)
    return out


def split_of(items: Sequence[T], fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
             seed: int = 0, group: Optional[Callable[[T], Optional[Hashable]]] = None,
             key: Callable[[T], str] = str) -> Dict[str, str]:
    """``key(item) -> split name`` for :func:`seeded_split` with the same arguments."""
    parts = seeded_split(items, fractions, seed, group, key)
    return {key(it): name for name, members in parts.items() for it in members}
