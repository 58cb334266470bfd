"""The adapter contract, checked for every registered adapter on its own example data.

Each adapter writes a tiny dataset in its native layout (``write_example``); the test loads
every split, checks the counts it promised, validates every sample and its files
(``check_dataset``: zero problems), and checks that the declared tasks and classes match what
the samples carry.
"""

from __future__ import annotations

import pytest

import dataset_adapters  # noqa: F401 - registers the adapters
from unihema.data.catalog import ADAPTERS, DatasetAdapter
from unihema.data.check import check_dataset

KEYS = sorted(ADAPTERS.names())


def _adapter(key: str) -> type:
    return ADAPTERS.get(key)


@pytest.mark.parametrize("key", KEYS)
def test_declaration(key):
    cls = _adapter(key)
    assert cls.check_declaration() == [], f"{key}: bad class attributes"
    assert cls.url, f"{key}: no url"
    assert cls.tasks, f"{key}: declares no task"
    assert cls.splits, f"{key}: declares no split"
    doc = cls.__doc__ or ""
    assert len(doc.strip().splitlines()) >= 3, f"{key}: the class docstring must give the layout"
    assert cls.downloads or cls.access or key == "synthetic_smear", \
        f"{key}: neither downloads nor access says how to get the data"
    for task in cls.classes:
        assert task in ("detect", "segment", "classify"), f"{key}: classes for task '{task}'"


@pytest.mark.parametrize("key", KEYS)
def test_example_loads_and_checks(key, tmp_path):
    cls = _adapter(key)
    if cls.write_example.__func__ is DatasetAdapter.write_example.__func__:
        pytest.fail(f"{key} ({cls.__module__}.{cls.__name__}) does not implement "
                    f"write_example(root): every adapter writes a tiny example of its layout")
    expected = cls.write_example(tmp_path)
    assert isinstance(expected, dict) and set(expected) <= set(cls(tmp_path).splits), \
        f"{key}: write_example must return counts per declared split, got {expected}"
    assert sum(expected.values()) > 0, f"{key}: the example is empty"
    adapter = cls(tmp_path)
    samples = []
    for split in adapter.splits:  # an instance may narrow them (the generic adapter's spec)
        loaded = adapter.load(split)
        assert len(loaded) == expected.get(split, 0), \
            f"{key}/{split}: loaded {len(loaded)} samples, write_example promised " \
            f"{expected.get(split, 0)}"
        assert all(s.split == split and s.dataset == key for s in loaded)
        samples += loaded
    assert adapter.problems == []
    report = check_dataset(key, tmp_path, progress=False)
    assert report.problems == [], f"{key}: " + "; ".join(map(str, report.problems[:5]))
    supervised = {t for s in samples for t in s.tasks()}
    missing = set(adapter.tasks) - supervised
    assert not missing, f"{key}: declared tasks {sorted(missing)} supervised by no sample"
    for s in samples:
        if "detect" in cls.classes and s.box_labels:
            assert set(s.box_labels) <= set(cls.classes["detect"]), \
                f"{s.key}: box labels outside classes['detect']"
        if "classify" in cls.classes and s.label is not None:
            assert s.label in cls.classes["classify"], f"{s.key}: label outside classes"
        if "segment" in cls.classes and s.mask_values:
            assert set(s.mask_values.values()) <= set(cls.classes["segment"]), \
                f"{s.key}: mask classes outside classes['segment']"
