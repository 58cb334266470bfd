"""The Python API on a tiny random model: inputs, coordinates, output formats."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from unihema.api import UniHemaPipeline
from unihema.config import load_config
from unihema.modeling.model import UniHema



@pytest.fixture(scope="module")
def pipe(tmp_path_factory, tiny):
    torch.manual_seed(0)
    model = UniHema.from_config(load_config(None, tiny + ["model.heads.detect_score_threshold=0"]))
    path = tmp_path_factory.mktemp("api") / "model"
    model.save_pretrained(path, extra={"image_size": 128,
                                       "classes": {"detect": ["red blood cell", "platelet"]}})
    return UniHemaPipeline.from_pretrained(path)


def test_reads_checkpoint_settings(pipe):
    assert pipe.image_size == 128
    assert pipe.classes["detect"] == ["red blood cell", "platelet"]


def test_crop_size_of_the_checkpoint_resizes_the_single_cell_input(pipe, tmp_path):
    """A model trained with data.crop_size sees every cell image at that side, whatever the
    instrument's crop size; field tasks keep the image_size rule."""
    path = tmp_path / "model"
    pipe.model.save_pretrained(path, extra={"image_size": 128, "crop_size": 48})
    crop = UniHemaPipeline.from_pretrained(path)
    assert crop.crop_size == 48 and pipe.crop_size == 0
    cell = np.full((100, 80, 3), 180, np.uint8)

    def real_size(p, task):  # the unpadded image of the batch
        m = p._batch(cell, task, "p")["pixel_mask"][0]
        return int(m.any(1).sum()), int(m.any(0).sum())

    assert real_size(crop, "classify")[0] == 48 and real_size(crop, "morphology")[0] == 48
    assert real_size(pipe, "classify") == (100, 80)
    assert real_size(crop, "detect") == (100, 80)


def test_detect_boxes_are_in_original_pixels(pipe):
    image = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    objects = pipe.detect(image, min_score=0.0)["objects"]
    assert objects, "a random model still returns peaks above a zero threshold"
    for o in objects:
        x0, y0, x1, y1 = o["box"]
        assert 0 <= x0 <= x1 <= 200 and 0 <= y0 <= y1 <= 300
        assert o["label"] in ("red blood cell", "platelet") and 0 <= o["score"] <= 1


def test_segment_mask_has_the_image_size(pipe, tmp_path):
    path = tmp_path / "x.png"
    Image.fromarray(np.full((90, 150, 3), 200, np.uint8)).save(path)
    res = pipe.segment(path, ["background", "nucleus", "cytoplasm"])
    assert res["mask"].shape == (90, 150) and res["mask"].max() < 3


def test_classify_describe_ask_fill(pipe):
    cell = Image.fromarray(np.full((64, 64, 3), 180, np.uint8))
    res = pipe.classify(cell, ["lymphocyte", "monocyte", "eosinophil"])
    assert res["label"] in res["probs"] and abs(sum(res["probs"].values()) - 1) < 1e-3
    desc = pipe.describe(cell)
    assert "nucleus_shape" in desc["attributes"] and isinstance(desc["text"], str)
    answer = pipe.ask(cell, "What type of white blood cell is this?")
    assert isinstance(answer["answer"], str) and 0.0 <= answer["confidence"] <= 1.0
    filled = pipe.fill(cell, "A <extra_id_0> cell.")["text"]
    assert "<extra_id_0>" not in filled or filled == "A <extra_id_0> cell."


def test_bad_input_is_explained(pipe):
    with pytest.raises(ValueError, match="uint8"):
        pipe.ask(np.zeros((4, 4, 3), np.float32), "q?")
