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


TRUST_CLASSES = ["lymphocyte", "monocyte", "segmented neutrophil"]


@pytest.fixture(scope="module")
def trusted(pipe, tmp_path_factory):
    """A model folder with a trust state over :data:`TRUST_CLASSES` (kNN unknown score on a
    bank of random embeddings), loaded by ``from_pretrained``."""
    from unihema.trust.state import TrustState
    from unihema.trust.unknown import FitData, build_scorer

    path = tmp_path_factory.mktemp("trusted") / "model"
    pipe.model.save_pretrained(path, extra={"image_size": 128})
    dim = pipe.model.heads["classify"].class_proj.out_features
    g = torch.Generator().manual_seed(0)
    bank = torch.nn.functional.normalize(torch.randn(30, dim, generator=g), dim=-1)
    scorer = build_scorer("knn", {"k": 3})
    tensors = {f"knn.{k}": v for k, v in
               scorer.fit(FitData(bank, torch.arange(30) % 3, TRUST_CLASSES)).items()}
    TrustState(classes=list(TRUST_CLASSES), temperature=0.7,
               conformal={"0.90": 0.9, "0.95": 0.97}, unknown_method="knn",
               unknown_threshold=0.5, referral_threshold=0.9, unknown_params=scorer.params(),
               fitted_on={"split": "val"}, tensors=tensors).save(path)
    return UniHemaPipeline.from_pretrained(path)


def _cell():
    return np.random.default_rng(1).integers(0, 255, (48, 48, 3), dtype=np.uint8)


def test_classify_with_a_trust_state_gives_the_set_and_the_unknown_score(pipe, trusted):
    assert pipe.trust is None and trusted.trust.classes == TRUST_CLASSES
    assert "prediction_set" not in pipe.classify(_cell(), TRUST_CLASSES)
    labels = ["segmented neutrophil", "lymphocyte", "monocyte"]  # the state's, another order
    out = trusted.classify(_cell(), labels)
    assert list(out["probs"]) == labels
    assert sum(out["probs"].values()) == pytest.approx(1.0, abs=1e-3)
    assert out["label"] == max(out["probs"], key=out["probs"].get) == out["prediction_set"][0]
    assert set(out["prediction_set"]) <= set(labels) and out["prediction_set"]
    assert out["unknown"] == (out["unknown_score"] > 0.5)
    top = max(out["probs"].values())
    assert out["needs_review"] == (out["unknown"] or top < 0.9)
    assert (out["reason"] == "") == (not out["needs_review"])
    # the state's temperature (0.7), not the head's (1.0): the same ranking, sharper
    raw = pipe.classify(_cell(), labels)["probs"]
    assert max(raw, key=raw.get) == out["label"] and top >= max(raw.values()) - 1e-3


def test_classify_on_a_subset_or_other_labels_of_a_trust_state(trusted):
    full = trusted.classify(_cell(), TRUST_CLASSES)
    sub = ["lymphocyte", "monocyte"]
    out = trusted.classify(_cell(), sub)
    assert set(out["probs"]) == set(sub)  # read over the labels asked for
    # the verdict of a reading over all the state's classes, the set kept to the labels
    assert out["unknown_score"] == full["unknown_score"]
    assert out["prediction_set"] == [c for c in full["prediction_set"] if c in sub]
    codes = [w["code"] for w in out["warnings"]]
    assert ("trust_set_outside_labels" in codes) == (not out["prediction_set"])
    other = trusted.classify(_cell(), ["lymphocyte", "basophil"])
    assert other["prediction_set"] is None and other["unknown_score"] is None
    assert "trust_not_covered" in [w["code"] for w in other["warnings"]]
