"""The one VOC builder: the box policy it is given decides the fate of bad boxes."""

from __future__ import annotations

import pytest

import dataset_adapters  # noqa: F401 - registers the adapters
from dataset_adapters import _examples as ex
from dataset_adapters._detection import voc_sample
from dataset_adapters.m5_malaria import M5Malaria
from unihema.data.boxes import BoxPolicy
from unihema.data.catalog import DataError

LABELS = {"RBC": "red blood cell", "WBC": "white blood cell"}
W, H = 160, 120


@pytest.fixture
def voc(tmp_path):
    """An image and its VOC file (0-based edges): a good box, one 40 px past the right
    border, one empty, one 1 px tall."""
    ex.write_smear(tmp_path / "a.jpg", W, H, [(10, 10, 40, 40)], ["RBC"])
    objects = [("RBC", (10, 10, 40, 40)), ("WBC", (120, 20, 200, 60)), ("RBC", (50, 50, 50, 70)),
               ("rbc", (60, 60, 90, 61))]
    return ex.write_voc(tmp_path / "a.xml", "a.jpg", W, H, objects, truncated=[0, 1, 0, 1])


def _sample(tmp_path, xml, policy, **kw):
    adapter = M5Malaria(tmp_path, on_error="skip")
    sample = voc_sample(adapter, "train", xml, None, LABELS, "a", one_based=False,
                        policy=policy, **kw)
    return adapter, sample


def test_error_leaves_the_image_out(tmp_path, voc):
    adapter, sample = _sample(tmp_path, voc, BoxPolicy(bad="error"))
    assert sample is None
    (p,) = adapter.problems
    assert p.file == str(voc) and p.reason.startswith("object 1 'WBC': box [120.0, 20.0, 200.0")
    with pytest.raises(DataError, match="a.xml: object 1 'WBC'.*outside the 160x120 image"):
        voc_sample(M5Malaria(tmp_path), "train", voc, None, LABELS, "a", one_based=False)


def test_drop_keeps_the_image_without_the_bad_boxes(tmp_path, voc):
    adapter, sample = _sample(tmp_path, voc, BoxPolicy(bad="drop"), flags=("truncated",))
    assert sample.boxes.tolist() == [[10, 10, 40, 40], [60, 60, 90, 61]]
    assert sample.box_labels == ["red blood cell", "red blood cell"]  # "rbc": any case
    assert sample.meta["truncated"] == [False, True]  # the kept boxes' flags
    assert [p.reason.split(":")[0] for p in adapter.problems] == ["object 1 'WBC'",
                                                                  "object 2 'RBC'"]


def test_clip_clips_and_notes_instead_of_reporting(tmp_path, voc):
    adapter, sample = _sample(tmp_path, voc, BoxPolicy(bad="clip"), tiny_side=2.0)
    assert sample.boxes.tolist() == [[10, 10, 40, 40], [120, 20, 160, 60], [60, 60, 90, 61]]
    assert not adapter.problems
    notes = [n.reason for n in adapter.notes]
    assert any(n.startswith("object 1 'WBC'") and "clipped to it" in n for n in notes)
    assert any(n.startswith("object 2 'RBC': empty box") for n in notes)
    assert sample.meta["tiny_boxes"] == [2]
    assert any(n.startswith("object 3 'rbc' is a 30x1 px box") for n in notes)


def test_an_unknown_label_leaves_the_image_out_whatever_the_policy(tmp_path, voc):
    adapter = M5Malaria(tmp_path, on_error="skip")
    assert voc_sample(adapter, "train", voc, None, {"RBC": "red blood cell"}, "a",
                      one_based=False, policy=BoxPolicy(bad="clip")) is None
    assert "object 1 'WBC': unknown label 'WBC'; this dataset's labels are: RBC" \
        in adapter.problems[0].reason
