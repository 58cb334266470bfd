"""The ``synthetic_smear`` adapter reads back what ``unihema.synth`` writes; bad input is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dataset_adapters.synthetic_smear import SyntheticSmear
from unihema.config.schema import SynthConfig
from unihema.data.catalog import ADAPTERS, DataError
from unihema.data.sample import TASKS
from unihema.synth import generate_dataset

CFG = SynthConfig(size=128, train=6, val=2, test=2, seed=1, workers=1)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic_smear")
    generate_dataset(root, CFG, progress=False)
    return root


@pytest.fixture
def root(generated, tmp_path) -> Path:
    """A private copy that a test may damage."""
    return Path(shutil.copytree(generated, tmp_path / "copy"))


def test_declaration_and_registry():
    assert ADAPTERS.get("synthetic_smear") is SyntheticSmear
    assert SyntheticSmear.check_declaration() == []
    assert set(SyntheticSmear.tasks) == set(TASKS)
    assert "manifest.json" in SyntheticSmear.layout()
    assert SyntheticSmear.classes["segment"][0] == "background"


def test_round_trip_matches_the_manifest(generated):
    manifest = json.loads((generated / "manifest.json").read_text())
    adapter = SyntheticSmear(generated)
    for split in SyntheticSmear.splits:
        samples = adapter.load(split)
        fields = [s for s in samples if s.meta["kind"] == "field"]
        crops = [s for s in samples if s.meta["kind"] == "crop"]
        assert len(fields) == manifest["splits"][split]
        assert len(crops) == manifest["crops"][split]
        for s in samples:
            assert Path(s.image_path).is_absolute() and Path(s.image_path).is_file()
            assert s.dataset == "synthetic_smear" and s.split == split
        for s in fields:
            assert Path(s.mask_path).is_file() and s.boxes is not None and s.qa and s.report
    assert adapter.problems == []


def test_missing_manifest_is_named(root):
    (root / "manifest.json").unlink()
    with pytest.raises(DataError, match=r"manifest\.json.*unihema data generate"):
        SyntheticSmear(root).load("train")


def test_corrupt_line_is_named_with_its_line(root):
    path = root / "train" / "fields.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = lines[2][: len(lines[2]) // 2]  # a truncated write
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"fields\.jsonl:3"):
        SyntheticSmear(root).load("train")
    adapter = SyntheticSmear(root, on_error="skip")
    samples = adapter.load("train")
    assert len([s for s in samples if s.meta["kind"] == "field"]) == CFG.train - 1
    assert [(Path(p.file).name, p.line) for p in adapter.problems] == [("fields.jsonl", 3)]


def test_missing_image_is_reported(root):
    victim = root / "train" / "images" / "train_000001.png"
    victim.unlink()
    with pytest.raises(DataError, match="train_000001.png"):
        SyntheticSmear(root).load("train")
    adapter = SyntheticSmear(root, on_error="skip")
    adapter.load("train")
    assert len(adapter.problems) == 1 and "train_000001.png" in adapter.problems[0].file


def test_split_not_generated(tmp_path):
    generate_dataset(tmp_path, CFG, splits={"train": 2}, progress=False)
    adapter = SyntheticSmear(tmp_path)
    assert len([s for s in adapter.load("train") if s.meta["kind"] == "field"]) == 2
    with pytest.raises(DataError, match="split 'val' was not generated"):
        adapter.load("val")
