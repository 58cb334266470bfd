"""Seeded split: deterministic, order-independent, patient-aware, close to the fractions."""

from __future__ import annotations

import random

import pytest

from unihema.data.splits import seeded_split, split_of


def test_fractions_and_determinism():
    items = [f"img_{i:03d}" for i in range(400)]
    parts = seeded_split(items)
    assert {k: len(v) for k, v in parts.items()} == {"train": 280, "val": 40, "test": 80}
    shuffled = items[:]
    random.Random(3).shuffle(shuffled)
    again = seeded_split(shuffled)
    assert {k: sorted(v) for k, v in again.items()} == {k: sorted(v) for k, v in parts.items()}
    assert parts["train"] == [i for i in items if i in set(parts["train"])]  # input order kept
    other = seeded_split(items, seed=1)
    assert other["test"] != parts["test"]


def test_patients_never_straddle_splits():
    items = [(f"p{p}", k) for p in range(30) for k in range(1 + p % 4)]
    parts = seeded_split(items, {"train": 0.6, "test": 0.4}, group=lambda it: it[0],
                         key=lambda it: f"{it[0]}/{it[1]}")
    train = {p for p, _ in parts["train"]}
    test = {p for p, _ in parts["test"]}
    assert train and test and not train & test
    assert sum(map(len, parts.values())) == len(items)
    assert abs(len(parts["test"]) - 0.4 * len(items)) <= 3  # whole patients, close to 40%


def test_split_of_and_empty_splits():
    m = split_of(["a", "b", "c"], {"train": 1.0, "test": 0.0})
    assert m == {"a": "train", "b": "train", "c": "train"}
    assert seeded_split([], {"train": 0.5, "test": 0.5}) == {"train": [], "test": []}


@pytest.mark.parametrize("kwargs, expected", [
    ({"fractions": {"train": 0.5, "test": 0.4}}, "sum to 1"),
    ({"fractions": {"train": 1.2, "test": -0.2}}, ">= 0"),
    ({"fractions": {}}, "empty"),
])
def test_bad_fractions(kwargs, expected):
    with pytest.raises(ValueError, match=expected):
        seeded_split(["a"], **kwargs)


def test_duplicate_keys():
    with pytest.raises(ValueError, match="same key"):
        seeded_split(["a", "a"])
