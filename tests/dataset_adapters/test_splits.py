"""The adapters' splits: one fractions constant, the seeded split, counting an assignment."""

from __future__ import annotations

import pytest

from dataset_adapters import _classification, _splits
from dataset_adapters._splits import FRACTIONS, assign_splits, count_splits
from unihema.data.splits import DEFAULT_FRACTIONS, seeded_split


def test_one_fractions_constant_for_adapters_and_the_generic_adapter():
    assert FRACTIONS is DEFAULT_FRACTIONS
    assert dict(FRACTIONS) == {"train": 0.7, "val": 0.1, "test": 0.2}
    assert _classification.split_keys is _splits.assign_splits


def test_assign_splits_is_the_seeded_split_by_key_and_patient():
    keys = [f"img{i:03d}" for i in range(50)]
    groups = [f"p{i // 5}" if i < 25 else None for i in range(50)]
    got = assign_splits(keys, groups, seed=3)
    parts = seeded_split(list(zip(keys, groups)), DEFAULT_FRACTIONS, 3,
                         group=lambda kv: kv[1], key=lambda kv: kv[0])
    assert got == {k: split for split, items in parts.items() for k, _ in items}
    by_patient = {}
    for k, g in zip(keys, groups):
        if g is not None:
            by_patient.setdefault(g, set()).add(got[k])
    assert all(len(s) == 1 for s in by_patient.values())


def test_count_splits_lists_every_split_and_rejects_a_foreign_one():
    assert count_splits({"a": "train", "b": "train", "c": "test"}, ("train", "val", "test")) \
        == {"train": 2, "val": 0, "test": 1}
    assert count_splits({}, ("train",)) == {"train": 0}
    with pytest.raises(KeyError, match="'c' is assigned to split 'dev', not one of"):
        count_splits({"c": "dev"}, ("train", "val", "test"))
