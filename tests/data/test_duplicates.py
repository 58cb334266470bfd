"""``data check`` duplicate findings (within a split, across splits, --against) and the
training-image record that evaluation compares against."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.data.test_imagehash import crop, reencode, texture
from unihema.cli import main
from unihema.data import io
from unihema.data.catalog import DataError
from unihema.data.check import check_dataset
from unihema.data.duplicates import TRAIN_IMAGES, TrainImages, hash_image
from unihema.data.generic import GenericAdapter

SPEC = ("format: folder\nclass_root: '{split}'\nclasses: [neutrophil, lymphocyte]\n"
        "splits: {names: [%s]}\n")


def save(path: Path, img: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, **kw)
    return path


def make_dataset(root: Path, files: dict, splits: str = "train, val, test") -> Path:
    """A generic class-folder dataset: ``{"train/neutrophil/a.png": image}``."""
    for rel, img in files.items():
        save(root / rel, img, **({"quality": 85} if rel.endswith(".jpg") else {}))
    (root / "unihema_dataset.yaml").write_text(SPEC % splits)
    return root


@pytest.fixture
def leaky(tmp_path) -> Path:
    """a: byte-copied into val; b: cropped 2 %, resized to 75 % and re-encoded as JPEG into
    test; c: re-encoded as JPEG in the same split; d and e: distinct."""
    a, b, c, d, e = (texture(seed) for seed in range(5))
    b_copy = np.asarray(Image.fromarray(crop(b, left=0.02, bottom=0.02)).resize(
        (118, 86), Image.BILINEAR))
    root = make_dataset(tmp_path / "leaky", {
        "train/neutrophil/a.png": a, "train/lymphocyte/b.png": b, "train/neutrophil/c.png": c,
        "train/lymphocyte/c_again.jpg": reencode(c, quality=60),
        "test/lymphocyte/b_small.jpg": b_copy, "test/neutrophil/d.png": d,
        "val/lymphocyte/e.png": e})
    (root / "val/neutrophil").mkdir()
    shutil.copyfile(root / "train/neutrophil/a.png", root / "val/neutrophil/a_copy.png")
    return root


def summary(report):
    return sorted((f.kind, f.scope, Path(f.a.path).name, Path(f.b.path).name)
                  for f in report.duplicates.findings)


def test_check_reports_byte_and_reencoded_copies(leaky):
    report = check_dataset("generic", leaky, progress=False)
    assert report.ok  # duplicates are warnings, not problems
    assert summary(report) == [
        ("exact", "across splits", "a.png", "a_copy.png"),
        ("near", "across splits", "b.png", "b_small.jpg"),
        ("near", "within split", "c_again.jpg", "c.png")]
    assert report.duplicates.images == 8
    text = report.format()
    assert "across splits: 1 exact, 1 near   <- LEAK" in text
    assert "generic/train:train/neutrophil/a.png  ~  generic/val:val/neutrophil/a_copy.png  " \
           "(same bytes)" in text
    assert "generic/test:test/lymphocyte/b_small.jpg" in text and "bits differ" in text
    js = report.to_dict()["duplicates"]
    assert js["counts"]["across splits"] == {"exact": 1, "near": 1}
    assert {f["kind"] for f in js["findings"]} == {"exact", "near"}
    assert js["findings"][0]["a"]["file"].endswith("a.png")


def test_fast_finds_byte_copies_only_and_the_pass_can_be_off(leaky):
    report = check_dataset("generic", leaky, progress=False, fast=True)
    assert summary(report) == [("exact", "across splits", "a.png", "a_copy.png")]
    assert "near duplicates were not searched" in report.format()
    assert check_dataset("generic", leaky, progress=False, duplicates=False).duplicates is None


def test_one_file_behind_several_samples_is_one_image(leaky, monkeypatch):
    load = GenericAdapter.load

    def twice(self, split):  # every image serves two samples, as a field gives several crops
        samples = load(self, split)
        return samples + [dataclasses.replace(s, sample_id=s.sample_id + "#2") for s in samples]

    monkeypatch.setattr(GenericAdapter, "load", twice)
    assert len(summary(check_dataset("generic", leaky, progress=False))) == 3


def test_a_window_is_hashed_as_its_whole_file(tmp_path):
    path = save(tmp_path / "field.png", texture(7))
    window = io.crop_image_path(path, (10, 10, 50, 40))
    sha, ph = hash_image(window)
    whole_sha, whole = hash_image(str(path))
    assert sha == whole_sha and (ph == whole).all()


def test_against_other_datasets_on_the_command_line(leaky, tmp_path, capsys):
    d = np.asarray(Image.open(leaky / "test/neutrophil/d.png"))
    big = np.asarray(Image.fromarray(d).resize((240, 180), Image.BICUBIC))
    other = make_dataset(tmp_path / "other", {"train/neutrophil/d_big.jpg": big,
                                              "train/neutrophil/f.png": texture(9)}, "train")
    shutil.copyfile(leaky / "val/lymphocyte/e.png", other / "train/neutrophil/e.png")
    out = tmp_path / "report.json"
    assert main(["data", "check", "generic", "--root", str(leaky), "--no-progress",
                 "--against", f"generic={other}", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"against generic at {other} (3 files)" in text
    assert "across datasets: 1 exact, 1 near   <- LEAK" in text
    findings = json.loads(out.read_text())["duplicates"]["findings"]
    cross = sorted((f["kind"], Path(f["a"]["file"]).name, Path(f["b"]["file"]).name)
                   for f in findings if f["scope"] == "across datasets")
    assert cross == [("exact", "e.png", "e.png"), ("near", "d.png", "d_big.jpg")]


@pytest.mark.parametrize("against, message", [
    ("generic", "--against expects KEY=DIR"),
    ("nosuch=.", "unknown dataset adapter 'nosuch'"),
    ("generic=/no/such/folder", "the folder '/no/such/folder' does not exist"),
])
def test_bad_against_is_a_clear_error(leaky, capsys, against, message):
    assert main(["data", "check", "generic", "--root", str(leaky), "--no-progress",
                 "--against", against]) == 2
    assert message in capsys.readouterr().err


def test_real_bccd_has_one_near_duplicate_across_splits(shared_datasets):
    """Measured: BloodImage_00037 (val) and 00038 (train) show the same field a few pixels
    apart; no other pair of the 364 images is within the threshold."""
    report = check_dataset("bccd", shared_datasets / "BCCD", progress=False)
    assert summary(report) == [
        ("near", "across splits", "BloodImage_00038.jpg", "BloodImage_00037.jpg")]
    assert report.duplicates.findings[0].distance == 4


# ----------------------------------------------------------------------------- the record
def test_train_record_round_trip_and_overlap(leaky, tmp_path):
    train = sorted(str(p) for p in (leaky / "train").rglob("*.*"))
    record = TrainImages.from_paths(train + train[:1], sources=["generic/train"], workers=1)
    assert len(record.sha256) == 4 and record.decoded.all()
    path = record.write(tmp_path / TRAIN_IMAGES)
    again = TrainImages.read(path)
    assert again.sha256 == record.sha256 and (again.phash == record.phash).all()
    assert again.sources == ["generic/train"]
    evaluated = [str(leaky / p) for p in ("val/neutrophil/a_copy.png",
                                          "test/lymphocyte/b_small.jpg",
                                          "test/neutrophil/d.png", "val/neutrophil/a_copy.png")]
    assert again.overlap(evaluated) == {"items": 4, "exact": 2, "near": 1}


def test_a_broken_record_names_the_file(tmp_path):
    bad = tmp_path / TRAIN_IMAGES
    bad.write_text(json.dumps({"sha256": ["00"], "phash": [None]}))
    with pytest.raises(DataError, match=f"{bad}: not a training-image record"):
        TrainImages.read(bad)
