"""The shared helpers: atomic writes, file digests, slugs, JSON-ready copies."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

from unihema.utils import (atomic_save, atomic_write_bytes, atomic_write_text, jsonable,
                           sha256_file, slug)


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "a.json"  # the folder is created
    assert atomic_write_text(path, "old") == path
    atomic_write_bytes(path, b"new", durable=False)
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_atomic_write_gives_the_mode_of_a_plain_open(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    path = atomic_write_text(tmp_path / "atomic.txt", "x")
    assert stat.S_IMODE(os.stat(path).st_mode) == stat.S_IMODE(os.stat(plain).st_mode)


def test_a_failed_save_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = atomic_write_text(tmp_path / "keep.txt", "before")

    def half_then_fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_save(path, half_then_fail)
    assert path.read_text() == "before"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_atomic_save_hands_a_library_the_temporary_path(tmp_path):
    image = Image.fromarray(np.full((4, 6), 7, np.uint8), mode="L")
    path = atomic_save(tmp_path / "m.png", lambda tmp: image.save(tmp, format="PNG"))
    assert np.asarray(Image.open(path)).tolist() == [[7] * 6] * 4


def test_sha256_file_reads_in_chunks_like_hashlib(tmp_path, monkeypatch):
    data = os.urandom(10_000)
    path = tmp_path / "blob"
    path.write_bytes(data)
    monkeypatch.setattr("unihema.utils.CHUNK", 333)  # many chunks, a partial last one
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_slug_keeps_names_safe_for_files():
    assert slug("bccd / detect") == "bccd_detect"
    assert slug("a.b-c_d") == "a.b-c_d"
    assert slug(" / ") == "x"


def test_jsonable_converts_arrays_scalars_keys_and_non_finite_numbers():
    value = {1: np.float32(0.5), "a": np.arange(3), "t": torch.tensor([1.5, 2.0]),
             "n": (float("nan"), np.float32("inf"), np.int64(4)), "s": "x", "b": True}
    out = jsonable(value)
    assert out == {"1": 0.5, "a": [0, 1, 2], "t": [1.5, 2.0], "n": [None, None, 4],
                   "s": "x", "b": True}
    json.dumps(out, allow_nan=False)
    kept = jsonable([float("nan")], finite=False)
    assert np.isnan(kept[0])
