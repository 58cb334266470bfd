"""Every YOLO adapter reads names files wherever labelling tools leave them (a classes.txt in
each labels/<split>/): other spellings of the same classes are a note, other classes a
problem, and a names file is never taken for a label file."""

from __future__ import annotations

import pytest

import dataset_adapters  # noqa: F401 - registers the adapters
from dataset_adapters.bio_net import BioNet
from dataset_adapters.leukemia_attri import DEFAULT_NAMES, LeukemiaAttri
from unihema.data.check import check_dataset

#: adapter, folder holding labels/<split>/, the example's names respelled, the same swapped
CASES = {
    "bio_net": (BioNet, "detection", "rbc\nwbc\nPlatelet\n", "WBC\nRBC\nPlatelets\n"),
    "leukemia_attri": (LeukemiaAttri, "HCM/1000x",
                       "\n".join(n.upper() for n in DEFAULT_NAMES) + "\n",
                       "\n".join((DEFAULT_NAMES[3], DEFAULT_NAMES[2], DEFAULT_NAMES[1],
                                  *DEFAULT_NAMES[4:], DEFAULT_NAMES[0])) + "\n"),
}


@pytest.mark.parametrize("key", sorted(CASES))
def test_names_beside_the_labels(key, tmp_path):
    cls, folder, respelled, swapped = CASES[key]
    expected = cls.write_example(tmp_path)
    for split in ("train", "val", "test"):
        (tmp_path / folder / "labels" / split / "classes.txt").write_text(respelled)
    report = check_dataset(key, tmp_path, progress=False)
    assert report.problems == []
    assert {s.split: s.summary["samples"] for s in report.splits} == expected
    (note,) = report.notes
    assert "labels/train/classes.txt" in note.reason
    assert "spell the classes differently but name the same ones" in note.reason

    (tmp_path / folder / "labels" / "val" / "classes.txt").write_text(swapped)
    report = check_dataset(key, tmp_path, progress=False)
    assert report.problems and all("labels/val/classes.txt lists" in p.reason
                                   for p in report.problems)
