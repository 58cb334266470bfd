"""DatasetMapper and TaskDataset: documented shapes, dtypes and text per task; reproducibility."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from unihema.config.schema import AugmentConfig, Config
from unihema.data.text import language
from unihema.tasks import prompts
from unihema.data.catalog import DataError
from unihema.data.io import ImageReadError
from unihema.pipeline.mapper import (DatasetMapper, TaskDataset, task_augment_config,
                                          truth_reading)
from unihema.data.sample import UnifiedSample

SIZE = 64
W, H = 96, 72
MASK_VALUES = {0: "background", 128: "cytoplasm", 255: "nucleus"}
CLASSES = ["red blood cell", "white blood cell", "platelet"]
ATTRS = {"cell_size": "big", "nucleus_shape": "segmented-multilobed", "granule_type": "small"}
REPORT = "This field shows 2 red blood cells and 1 white blood cell. No parasites are seen."


@pytest.fixture
def field(tmp_path) -> UnifiedSample:
    """A field image with three boxed cells, a matching mask, a report and two QA pairs."""
    rng = np.random.default_rng(0)
    img = rng.integers(150, 256, (H, W, 3), dtype=np.uint8)
    boxes = np.array([[4, 4, 30, 26], [40, 10, 80, 50], [84, 60, 92, 68]], np.float32)
    mask = np.zeros((H, W), np.uint8)
    mask[10:50, 40:80] = 128
    mask[20:40, 50:70] = 255
    Image.fromarray(img).save(tmp_path / "field.png")
    Image.fromarray(mask).save(tmp_path / "field_mask.png")
    return UnifiedSample(
        dataset="toy", split="train", sample_id="f0", image_path=str(tmp_path / "field.png"),
        width=W, height=H, boxes=boxes, box_labels=["red blood cell", "white blood cell",
                                                    "platelet"],
        box_attributes=[{}, {"nucleus_shape": "segmented-bilobed"}, {}],
        mask_path=str(tmp_path / "field_mask.png"), mask_values=MASK_VALUES,
        report=REPORT, qa=[language.qa_count("red blood cell", 2),
                           language.qa_presence("platelet", True)],
        meta={"classes_detect": CLASSES},
    ).check()


@pytest.fixture
def cell(tmp_path) -> UnifiedSample:
    """A single-cell crop with a label, a label set and morphology attributes (JPEG, square)."""
    img = np.full((40, 40, 3), 200, np.uint8)
    img[10:30, 10:30] = (120, 60, 160)
    Image.fromarray(img).save(tmp_path / "cell.jpg")
    return UnifiedSample(
        dataset="toy", split="test", sample_id="c0", image_path=str(tmp_path / "cell.jpg"),
        width=40, height=40, label="neutrophil", attributes=ATTRS,
        label_set=["lymphocyte", "monocyte", "neutrophil"],
    ).check()


def _check_common(item, task, key):
    img = item["image"]
    assert img.dtype == torch.float32 and img.ndim == 3 and img.shape[0] == 3
    assert 0.0 <= img.min() and img.max() <= 1.0
    assert max(img.shape[1:]) <= SIZE
    assert item["task"] == task and item["key"] == key and isinstance(item["prompt"], str)
    assert isinstance(item["scale"], float)


@pytest.mark.parametrize("train", [False, True])
def test_detect(field, train):
    mapper = DatasetMapper(image_size=SIZE, augment=AugmentConfig(crop=1.0), train=train)
    item = mapper(field, "detect", np.random.default_rng(3))
    _check_common(item, "detect", field.key)
    assert item["classes"] == CLASSES
    n = len(item["boxes"])
    assert item["boxes"].dtype == torch.float32 and item["boxes"].shape == (n, 4)
    assert item["box_classes"].dtype == torch.int64 and item["box_classes"].shape == (n,)
    assert len(item["box_attributes"]) == n
    h, w = item["image"].shape[1:]
    assert (item["boxes"][:, 2] <= w).all() and (item["boxes"][:, 3] <= h).all()
    if not train:
        assert item["image"].shape[1:] == (48, 64) and item["scale"] == pytest.approx(SIZE / W)
        assert item["orig_size"] == (H, W)
        torch.testing.assert_close(item["boxes"], torch.from_numpy(field.boxes) * SIZE / W)
        assert item["box_classes"].tolist() == [0, 1, 2]
        assert item["box_attributes"][1] == {"nucleus_shape": "segmented-bilobed"}
        assert item["prompt"] == prompts.render("detect", classes=CLASSES)
    else:
        # per-box attributes follow the surviving boxes (box i has class i in this fixture)
        for cls_idx, attrs in zip(item["box_classes"].tolist(), item["box_attributes"]):
            assert attrs == field.box_attributes[cls_idx]


def test_detect_classes_default_to_sorted_box_labels(field):
    field.meta = {}
    item = DatasetMapper(image_size=SIZE, augment=None, train=False)(
        field, "detect", np.random.default_rng(0))
    assert item["classes"] == sorted(CLASSES)
    assert [item["classes"][i] for i in item["box_classes"]] == field.box_labels


@pytest.mark.parametrize("train", [False, True])
def test_segment(field, train):
    mapper = DatasetMapper(image_size=SIZE, augment=AugmentConfig(), train=train)
    item = mapper(field, "segment", np.random.default_rng(1))
    _check_common(item, "segment", field.key)
    assert item["classes"] == ["background", "cytoplasm", "nucleus"]
    assert item["mask"].dtype == torch.int64 and item["mask"].shape == item["image"].shape[1:]
    assert set(item["mask"].unique().tolist()) <= {0, 1, 2}
    if not train:
        assert set(item["mask"].unique().tolist()) == {0, 1, 2}


def test_segment_bad_mask_value_is_an_error(field, tmp_path):
    bad = np.zeros((H, W), np.uint8)
    bad[0, 0] = 3
    Image.fromarray(bad).save(tmp_path / "bad_mask.png")
    field.mask_path = str(tmp_path / "bad_mask.png")
    with pytest.raises(ImageReadError, match="bad_mask.png"):
        DatasetMapper(image_size=SIZE, augment=None, train=False)(
            field, "segment", np.random.default_rng(0))


def test_classify_and_morphology(cell):
    mapper = DatasetMapper(image_size=SIZE, augment=None, train=False)
    item = mapper(cell, "classify", np.random.default_rng(0))
    _check_common(item, "classify", cell.key)
    # a crop smaller than image_size keeps its native magnification unless upscale is asked
    assert item["image"].shape == (3, cell.height, cell.width) and item["scale"] == 1.0
    up = DatasetMapper(image_size=SIZE, augment=None, train=False, upscale=True)
    assert up(cell, "classify", np.random.default_rng(0))["image"].shape == (3, SIZE, SIZE)
    assert item["classes"] == cell.label_set and item["label"] == 2
    assert item["prompt"] == "classify: lymphocyte; monocyte; neutrophil"
    item = mapper(cell, "morphology", np.random.default_rng(0))
    assert item["attributes"] == ATTRS
    assert item["target"] == language.describe_cell("neutrophil", ATTRS)
    assert item["prompt"] == prompts.PROMPTS["morphology"].eval


def test_mlm_eval_is_reproducible_and_train_varies(field):
    ev = DatasetMapper(image_size=SIZE, augment=None, train=False)
    a = ev(field, "mlm", np.random.default_rng(0))
    b = ev(field, "mlm", np.random.default_rng(99))
    assert a["prompt"] == b["prompt"] and a["target"] == b["target"]
    assert a["prompt"].startswith("fill in the blanks: ") and "<extra_id_0>" in a["prompt"]
    masked = a["prompt"][len("fill in the blanks: "):]
    assert language.unmask(masked, a["target"]) == REPORT
    tr = DatasetMapper(image_size=SIZE, augment=AugmentConfig(), train=True)
    outs = {tr(field, "mlm", np.random.default_rng(s))["target"] for s in range(10)}
    assert len(outs) > 1


def test_vqa(field):
    ev = DatasetMapper(image_size=SIZE, augment=None, train=False)
    item = ev(field, "vqa", np.random.default_rng(0), qa_index=1)
    assert item["question"] == field.qa[1].question and item["target"] == "yes"
    assert item["qtype"] == "presence" and item["prompt"] == f"question: {field.qa[1].question}"
    with pytest.raises(ValueError, match="qa_index"):
        ev(field, "vqa", np.random.default_rng(0))
    tr = DatasetMapper(image_size=SIZE, augment=AugmentConfig(), train=True)
    seen = {tr(field, "vqa", np.random.default_rng(s))["target"] for s in range(20)}
    assert seen == {"2", "yes"}


def test_unsupervised_task_names_sample_and_tasks(cell):
    mapper = DatasetMapper(image_size=SIZE, augment=None, train=False)
    with pytest.raises(ValueError, match=r"toy/test/c0.*\['classify', 'morphology'\]"):
        mapper(cell, "detect", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown task"):
        mapper(cell, "caption", np.random.default_rng(0))


def test_size_mismatch_is_an_error(cell):
    cell.width = 41
    with pytest.raises(DataError, match="decoded size 40x40"):
        DatasetMapper(image_size=SIZE, augment=None, train=False)(
            cell, "classify", np.random.default_rng(0))


def test_task_augment_policy():
    cfg = AugmentConfig(hflip=1.0, crop=1.0, scale=(0.5, 2.0))
    assert task_augment_config(cfg, "detect") == cfg
    vqa = task_augment_config(cfg, "vqa")
    assert (vqa.hflip, vqa.vflip, vqa.rot90, vqa.crop, vqa.scale) == (0, 0, 0, 0, (1.0, 1.0))
    assert vqa.stain_jitter == cfg.stain_jitter
    cls = task_augment_config(cfg, "classify")
    assert cls.hflip == 1.0 and cls.crop == 0.0 and cls.scale == (1.0, 1.0)


def test_from_config():
    cfg = Config()
    cfg.data.image_size = 128
    mapper = DatasetMapper.from_config(cfg, train=True)
    assert mapper.image_size == 128 and mapper.train and mapper.augment is cfg.data.augment
    assert DatasetMapper.from_config(cfg.data, train=False).train is False


def test_task_dataset(field, cell):
    samples = [field, cell, field]
    ev = TaskDataset(samples, "vqa", DatasetMapper(image_size=SIZE, augment=None, train=False),
                     train=False)
    assert len(ev) == 4  # one item per QA pair
    assert [ev[i]["target"] for i in range(4)] == ["2", "yes", "2", "yes"]
    mapper = DatasetMapper(image_size=SIZE, augment=AugmentConfig(crop=1.0), train=True)
    tr = TaskDataset(samples, "detect", mapper, train=True, seed=5)
    assert len(tr) == 2
    a, b = tr[1], tr[1]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["boxes"], b["boxes"])
    assert a["prompt"] == b["prompt"]
    tr.set_epoch(1)  # a new epoch draws a new augmentation
    assert not torch.equal(tr[1]["image"], a["image"])
    vqa = TaskDataset(samples, "vqa", mapper, train=True)
    assert len(vqa) == 4  # in training too: every pair, each its own item
    assert sorted(vqa[i]["target"] for i in range(4)) == ["2", "2", "yes", "yes"]
    with pytest.raises(ValueError, match="train"):
        TaskDataset(samples, "detect", mapper, train=False)
    with pytest.raises(ValueError, match="supervises"):
        TaskDataset([cell], "segment", DatasetMapper(image_size=SIZE, augment=None, train=False),
                    train=False)


def test_text_items_carry_the_annotations_reading(field, cell):
    ev = DatasetMapper(image_size=SIZE, augment=None, train=False)
    item = ev(field, "vqa", np.random.default_rng(0), qa_index=0)
    entries = dict(item["reading"]["entries"])
    assert entries["red blood cell"].startswith("1 red blood cell")  # one box of each
    assert entries["white blood cell"] == "1 white blood cell center"
    assert item["reading"]["report"] == REPORT
    mlm = ev(field, "mlm", np.random.default_rng(0))
    assert mlm["reading"] == item["reading"]
    assert mlm["prompt"] == prompts.render("mlm", text=mlm["masked_text"])
    crop = truth_reading(cell)
    assert crop["entries"][0] == ("white blood cell", "white blood cell type neutrophil")
    assert ("cell size", "cell size big") in crop["entries"]
    bare = UnifiedSample(dataset="toy", split="test", sample_id="q0",
                         image_path=cell.image_path, width=40, height=40,
                         qa=[language.qa_presence("platelet", True)])
    assert truth_reading(bare) == {"entries": [], "report": ""}


CROSS = {"morphology": ["classify"], "classify": ["morphology"]}


def test_cross_supervision_attaches_the_other_cell_tasks_targets_in_training(cell, tmp_path):
    rng = np.random.default_rng(0)
    tr = DatasetMapper(image_size=SIZE, augment=None, train=True, cross=CROSS)
    morph = tr(cell, "morphology", rng)
    assert morph["cross_tasks"] == ["classify"]
    assert morph["classes"] == cell.label_set and morph["label"] == 2  # "neutrophil"
    assert morph["attributes"] == ATTRS  # its own targets are unchanged
    typed = tr(cell, "classify", rng)
    assert typed["cross_tasks"] == ["morphology"] and typed["attributes"] == ATTRS
    # missing targets are marked, never invented: a typed crop without attributes (a red
    # cell), a described crop without a type
    red = UnifiedSample(dataset="toy", split="train", sample_id="r0",
                        image_path=cell.image_path, width=40, height=40,
                        label="spherocyte", label_set=["red blood cell", "spherocyte"]).check()
    assert tr(red, "classify", rng)["attributes"] == {}
    untyped = UnifiedSample(dataset="toy", split="train", sample_id="u0",
                            image_path=cell.image_path, width=40, height=40,
                            attributes=ATTRS).check()
    item = tr(untyped, "morphology", rng)
    assert item["classes"] == [] and item["label"] == -1
    # evaluation items carry their own task's targets only
    ev = DatasetMapper(image_size=SIZE, augment=None, train=False, cross=CROSS)
    item = ev(cell, "morphology", rng)
    assert "cross_tasks" not in item and "label" not in item and "classes" not in item
    assert "attributes" not in ev(cell, "classify", rng)
    # and without the setting nothing changes
    plain = DatasetMapper(image_size=SIZE, augment=None, train=True)(cell, "morphology", rng)
    assert "cross_tasks" not in plain and "label" not in plain


def test_cross_supervision_rejects_unsupported_pairs():
    with pytest.raises(ValueError, match=r"data.cross_supervision.*detect -> classify.*valid "
                                         r"pairs: classify -> morphology"):
        DatasetMapper(image_size=SIZE, augment=None, train=True, cross={"detect": ["classify"]})
    with pytest.raises(ValueError, match="classify -> classify"):
        DatasetMapper(image_size=SIZE, augment=None, train=True, cross={"classify": ["classify"]})
    cfg = Config()
    cfg.data.cross_supervision = {"morphology": ["vqa"]}
    with pytest.raises(ValueError, match="morphology -> vqa"):
        DatasetMapper.from_config(cfg, train=True)


def test_crop_size_brings_crops_of_every_magnification_to_one_side(cell, field):
    """``crop_size`` resizes single-cell crops (meta kind 'crop') up or down; fields keep the
    ``image_size`` rule; the size buckets of the mixture agree with the mapper."""
    from unihema.pipeline.mapper import target_side

    crop = dataclasses.replace(cell, meta={**cell.meta, "kind": "crop"})
    mapper = DatasetMapper(image_size=SIZE, augment=None, train=False, crop_size=48)
    item = mapper(crop, "classify", np.random.default_rng(0))
    assert item["image"].shape == (3, 48, 48) and item["scale"] == pytest.approx(48 / 40)
    assert mapper(cell, "classify", np.random.default_rng(0))["image"].shape == (3, 40, 40)
    big = DatasetMapper(image_size=SIZE, augment=None, train=False, crop_size=32)
    assert big(crop, "classify", np.random.default_rng(0))["image"].shape == (3, 32, 32)
    f = mapper(field, "detect", np.random.default_rng(0))
    assert max(f["image"].shape[1:]) == SIZE  # the 96x72 field still goes to image_size
    assert [target_side(s, SIZE, False, 48) for s in (crop, cell, field)] == [48, 40, SIZE]
    assert target_side(crop, SIZE, False, 500) == SIZE  # capped at image_size
    with pytest.raises(ValueError, match="crop_size must be >= 0"):
        DatasetMapper(image_size=SIZE, augment=None, train=False, crop_size=-1)
