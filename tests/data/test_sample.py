import json

import numpy as np
import pytest

from unihema.data.sample import QAPair, SampleError, UnifiedSample, summarize


def make(**kw):
    base = dict(dataset="toy", split="train", sample_id="a", image_path="/x.png", width=100,
                height=80)
    base.update(kw)
    return UnifiedSample(**base)


def test_tasks_follow_the_fields():
    assert make().tasks() == []
    s = make(boxes=np.zeros((0, 4)), box_labels=[], label="lymphocyte",
             label_set=["lymphocyte", "monocyte"], mask_path="/m.png",
             mask_values={0: "background"}, attributes={"cell_size": "big"},
             report="A cell.", qa=[QAPair("Q?", "A", "other")])
    assert s.tasks() == ["detect", "classify", "segment", "morphology", "mlm", "vqa"]
    # an annotated field with no objects still supervises detection
    assert make(boxes=[], box_labels=[]).tasks() == ["detect"]


def test_validate_catches_geometry_alignment_and_vocabulary():
    s = make(boxes=[[10, 10, 5, 20], [0, 0, 120, 10], [1, 1, 2, np.nan]],
             box_labels=["red blood cell", "Platelets"], label="monocyte",
             label_set=["lymphocyte"], mask_path="/m.png")
    problems = " | ".join(s.validate())
    assert "boxes has 3 rows but box_labels has 2" in problems
    assert "is empty" in problems
    assert "outside the 100x80 image" in problems
    assert "non-finite" in problems
    assert "'Platelets' is not a canonical term" in problems
    assert "not in label_set" in problems
    assert "mask_path and mask_values must be given together" in problems
    with pytest.raises(SampleError, match="toy/train/a"):
        s.check()


def test_valid_sample_round_trips_through_json():
    s = make(boxes=[[1.5, 2, 30, 40]], box_labels=["white blood cell"],
             box_attributes=[{"cell_size": "big"}], mask_path="/m.png",
             mask_values={0: "background", 255: "nucleus"}, qa=[QAPair("Q?", "yes", "presence")],
             meta={"kind": "field"})
    assert s.validate() == []
    again = UnifiedSample.from_dict(json.loads(s.to_json()))
    assert again.validate() == []
    assert np.allclose(again.boxes, s.boxes) and again.boxes.dtype == np.float32
    assert again.mask_values == {0: "background", 255: "nucleus"}
    assert again.qa == s.qa and again.meta == s.meta
    with pytest.raises(SampleError, match="unknown UnifiedSample fields"):
        UnifiedSample.from_dict({**s.to_dict(), "bbox": []})


def test_summarize_counts():
    a = make(boxes=[[0, 0, 5, 5], [1, 1, 4, 4]], box_labels=["platelet", "platelet"])
    b = make(sample_id="b", label="monocyte", qa=[QAPair("q", "a", "count")])
    sm = summarize([a, b])
    assert sm["samples"] == 2
    assert sm["tasks"]["detect"] == 1 and sm["tasks"]["classify"] == 1
    assert sm["boxes_per_class"] == {"platelet": 2}
    assert sm["qa_types"] == {"count": 1}
