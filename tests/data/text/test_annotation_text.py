"""Questions and reports derived from annotations (``data.train[i].derive_text``)."""

from __future__ import annotations

import numpy as np

from unihema.config.loader import load_config
from unihema.data.text.annotation_text import derive_text

from unihema.data.sample import QAPair, UnifiedSample
from unihema.engine.data import build_task_splits

CLASSES = ["red blood cell", "white blood cell", "platelet", "malaria parasite"]


def _field(labels, boxes, sample_id="f0"):
    return UnifiedSample(dataset="t", split="train", sample_id=sample_id, image_path="f.png",
                         width=90, height=90, boxes=np.asarray(boxes, np.float32),
                         box_labels=list(labels))


def test_field_counts_presence_absence_and_location_follow_the_boxes():
    s = _field(["red blood cell", "spherocyte", "monocyte"],
               [[0, 0, 10, 10], [40, 0, 50, 10], [70, 70, 80, 80]])
    out = derive_text(s, CLASSES)
    qa = {q.question: (q.answer, q.qtype) for q in out.qa}
    # a broader term counts its narrower ones: the spherocyte is a red blood cell
    assert qa["How many red blood cells are in the image?"] == ("2", "count")
    assert qa["How many spherocytes are in the image?"] == ("1", "count")
    assert qa["How many white blood cells are in the image?"] == ("1", "count")
    assert qa["How many platelets are in the image?"] == ("0", "count")
    assert qa["Is there a platelet in the image?"] == ("no", "presence")
    assert qa["Where is the monocyte in the image?"] == ("bottom right", "location")
    assert qa["Where is the spherocyte in the image?"] == ("top center", "location")
    assert "Where is the red blood cell in the image?" not in qa  # two of them
    assert "2 red blood cells" in out.report and "spherocyte" in out.report
    assert out.tasks() == ["detect", "mlm", "vqa"]
    assert s.qa == [] and s.report is None  # the original is untouched


def test_questions_are_the_same_every_time_and_existing_text_is_kept():
    s = _field(["red blood cell"], [[0, 0, 10, 10]])
    assert derive_text(s, CLASSES).qa == derive_text(s, CLASSES).qa
    own = UnifiedSample(dataset="t", split="train", sample_id="x", image_path="f.png", width=9,
                        height=9, boxes=np.zeros((0, 4), np.float32), box_labels=[],
                        qa=[QAPair("q?", "a")], report="r")
    assert derive_text(own, CLASSES) is own
    empty = _field([], np.zeros((0, 4)))
    assert derive_text(empty, CLASSES) is empty  # nothing annotated, nothing to say


def test_crop_type_attributes_and_sentence():
    crop = UnifiedSample(dataset="t", split="train", sample_id="c", image_path="c.png",
                         width=32, height=32, label="teardrop cell",
                         attributes={"cell_size": "small"})
    out = derive_text(crop)
    assert out.qa[0] == QAPair("What type of red blood cell is this?", "teardrop cell", "type")
    assert out.qa[1].qtype == "attribute" and out.qa[1].answer == "small"
    assert "teardrop cell" in out.report


def test_entry_option_gives_text_tasks_to_a_detection_source(tmp_path):
    from dataset_adapters.bccd import BCCD

    BCCD.write_example(tmp_path)
    entry = (f"data.train=[{{name: bccd, root: '{tmp_path}', split: train, "
             f"derive_text: true}}]")
    cfg = load_config(None, [entry])
    splits = {s.task: s for s in build_task_splits(cfg.data.train, cfg, train=True)}
    assert {"detect", "vqa", "mlm"} <= set(splits)
    item = splits["vqa"].dataset[0]
    assert item["question"].endswith("?") and item["target"]
    plain = load_config(None, [entry.replace("derive_text: true", "derive_text: false")])
    assert {s.task for s in build_task_splits(plain.data.train, plain, train=True)} == {"detect"}
