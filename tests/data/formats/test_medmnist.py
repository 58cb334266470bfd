"""MedMNIST NPZ: arrays per split; images addressed as ``<file.npz>::<array>/<index>``."""

from __future__ import annotations

import numpy as np
import pytest

from unihema.data import io
from unihema.data.catalog import DataError
from unihema.data.formats import npz_image_path, read_medmnist_npz


@pytest.fixture
def npz(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "bloodmnist.npz"
    np.savez_compressed(
        p, train_images=rng.integers(0, 256, (4, 28, 30, 3), dtype=np.uint8),
        train_labels=np.array([[0], [3], [7], [1]], dtype=np.uint8),
        val_images=rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        val_labels=np.array([[2], [5]]))
    return p


def test_read_split(npz):
    images, labels = read_medmnist_npz(npz, "train")
    assert images.shape == (4, 28, 30, 3) and images.dtype == np.uint8
    assert labels.tolist() == [0, 3, 7, 1] and labels.dtype == np.int64
    gray, _ = read_medmnist_npz(npz, "val")
    assert gray.shape == (2, 28, 28)


def test_missing_split_and_bad_file(npz, tmp_path):
    with pytest.raises(DataError, match=r"missing array\(s\) \['test_images', 'test_labels'\]"):
        read_medmnist_npz(npz, "test")
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        read_medmnist_npz(bad, "train")


def test_image_paths_read_by_io(npz):
    images, _ = read_medmnist_npz(npz, "train")
    path = npz_image_path(npz, "train_images", 2)
    assert path == f"{npz}::train_images/2"
    assert io.image_size(path) == (30, 28)
    np.testing.assert_array_equal(io.read_image(path), images[2])
    gray = io.read_image(npz_image_path(npz, "val_images", 1))
    assert gray.shape == (28, 28, 3) and (gray[..., 0] == gray[..., 2]).all()


@pytest.mark.parametrize("suffix, expected", [
    ("::train_images/4", "index 4 out of range"),
    ("::nope/0", "no array 'nope'"),
])
def test_bad_member(npz, suffix, expected):
    with pytest.raises(io.ImageReadError, match=expected):
        io.read_image(f"{npz}{suffix}")
    with pytest.raises(io.ImageReadError, match=expected):
        io.image_size(f"{npz}{suffix}")
