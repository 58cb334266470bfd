"""BloodMNIST: NPZ archive images addressed as ``<file.npz>::<array>/<index>``."""

from __future__ import annotations

import numpy as np
import pytest

from dataset_adapters.bloodmnist import BloodMnist
from unihema.data import io
from unihema.data.catalog import DataError


def test_example_round_trip(tmp_path):
    counts = BloodMnist.write_example(tmp_path)
    adapter = BloodMnist(tmp_path)
    with np.load(tmp_path / "bloodmnist.npz") as npz:
        images, labels = npz["val_images"], npz["val_labels"][:, 0]
    samples = adapter.load("val")
    assert len(samples) == counts["val"] == len(images)
    s = samples[2]
    assert s.sample_id == "val_2" and s.image_path.endswith("bloodmnist.npz::val_images/2")
    assert (s.width, s.height) == (28, 28)
    assert s.label == BloodMnist.classes["classify"][int(labels[2])]
    assert np.array_equal(io.read_image(s.image_path), images[2])


def _save(path, labels, n=3):
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"{split}_images"] = np.zeros((n, 28, 28, 3), np.uint8)
        arrays[f"{split}_labels"] = np.asarray(labels, dtype=np.uint8).reshape(n, 1)
    np.savez(path, **arrays)


def test_unknown_label_index_is_named(tmp_path):
    _save(tmp_path / "bloodmnist.npz", [0, 9, 7])
    with pytest.raises(DataError, match=r"bloodmnist\.npz.*unknown label index '9' at "
                                        r"train_labels\[1\]"):
        BloodMnist(tmp_path).load("train")
    adapter = BloodMnist(tmp_path, on_error="skip")
    assert [s.label for s in adapter.load("train")] == ["basophil", "platelet"]
    assert len(adapter.problems) == 1


def test_missing_array_and_archive_choice(tmp_path):
    np.savez(tmp_path / "bloodmnist_64.npz", train_images=np.zeros((1, 64, 64, 3), np.uint8),
             train_labels=np.zeros((1, 1), np.uint8))
    adapter = BloodMnist(tmp_path, on_error="skip")
    assert len(adapter.load("train")) == 1  # the single sized archive is used
    assert adapter.load("val") == []
    assert "missing array(s) ['val_images', 'val_labels']" in str(adapter.problems[0])
    _save(tmp_path / "bloodmnist_128.npz", [1, 2, 3])
    with pytest.raises(DataError, match="bloodmnist_128.npz, bloodmnist_64.npz.*npz="):
        BloodMnist(tmp_path).load("train")
    assert len(BloodMnist(tmp_path, npz="bloodmnist_128.npz").load("test")) == 3
