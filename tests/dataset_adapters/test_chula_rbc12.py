"""Chula RBC-12: point labels become boxes; bad lines and unknown types are named."""

from __future__ import annotations

import pytest

import dataset_adapters  # noqa: F401 - registers the adapters
from dataset_adapters.chula_rbc12 import LABEL_MAP, ChulaRBC12
from unihema.data.catalog import DataError


@pytest.fixture
def root(tmp_path):
    ChulaRBC12.write_example(tmp_path)
    return tmp_path


def _all(adapter):
    return [s for split in ChulaRBC12.splits for s in adapter.load(split)]


def test_points_become_boxes_and_are_kept(root):
    samples = {s.sample_id: s for s in _all(ChulaRBC12(root))}
    s = samples["1"]
    lines = (root / "Label" / "1.txt").read_text().split("\n")[:-1]
    assert len(s.boxes) == len(lines) == len(s.meta["points"])
    x, y, t = lines[0].split()
    assert s.meta["points"][0] == [float(x), float(y)]
    half = ChulaRBC12.point_box_size / 2
    assert s.boxes[0].tolist() == [max(0, float(x) - half), max(0, float(y) - half),
                                   min(160, float(x) + half), min(120, float(y) + half)]
    assert s.box_labels[0] == LABEL_MAP[t]


def test_unlabelled_image_is_a_note_not_a_sample(root):
    adapter = ChulaRBC12(root)
    samples = _all(adapter)
    assert "9" not in {s.sample_id for s in samples}
    assert any(n.file.endswith("9.jpg") and "not annotated" in n.reason for n in adapter.notes)


def test_malformed_line_raises_naming_file_and_line(root):
    label = root / "Label" / "2.txt"
    label.write_text(label.read_text() + "12.5 oops 3\n")
    n = len(label.read_text().splitlines())
    with pytest.raises(DataError, match=rf"2\.txt:{n}: .*y"):
        _all(ChulaRBC12(root))
    adapter = ChulaRBC12(root, on_error="skip")
    ids = {s.sample_id for s in _all(adapter)}
    assert "2" not in ids and "1" in ids
    assert [(p.file.endswith("2.txt"), p.line) for p in adapter.problems] == [(True, n)]


def test_unknown_type_and_point_outside_are_problems(root):
    (root / "Label" / "3.txt").write_text("10 10 13\n")
    (root / "Label" / "4.txt").write_text("10 500 0\n")
    adapter = ChulaRBC12(root, on_error="skip")
    _all(adapter)
    reasons = {p.file.rsplit("/", 1)[-1]: p for p in adapter.problems}
    assert "unknown label '13'" in reasons["3.txt"].reason and reasons["3.txt"].line == 1
    assert "outside the 160x120 image" in reasons["4.txt"].reason
