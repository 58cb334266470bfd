"""Folder-per-class scan: sorted, case-insensitive, hidden files skipped, others reported."""

from __future__ import annotations

import pytest

from unihema.data.catalog import DataError
from unihema.data.formats import scan_class_folders


def test_scan(tmp_path):
    for rel in ("b_cls/2.JPG", "b_cls/1.jpg", "a_cls/sub/x.png", "a_cls/.hidden.png",
                ".git/c.png", "a_cls/notes.txt", "stray.jpg", "c_cls/img.Tiff"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    skipped = []
    found = scan_class_folders(tmp_path, skipped=skipped)
    assert [(p.relative_to(tmp_path).as_posix(), c) for p, c in found] == [
        ("a_cls/sub/x.png", "a_cls"), ("b_cls/1.jpg", "b_cls"), ("b_cls/2.JPG", "b_cls"),
        ("c_cls/img.Tiff", "c_cls")]
    assert sorted(p.name for p in skipped) == ["notes.txt", "stray.jpg"]
    only_png = scan_class_folders(tmp_path, extensions=("png",))
    assert [c for _, c in only_png] == ["a_cls"]


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        scan_class_folders(tmp_path / "none")
