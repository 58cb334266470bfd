"""The processor saved beside every checkpoint: its file, the scale rule, the mapping back to
the original image, and the same tensors on the training and the inference path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unihema.api import UniHemaPipeline
from unihema.config import load_config
from unihema.data.catalog import load_dataset
from unihema.pipeline.collate import collate
from unihema.pipeline.mapper import DatasetMapper
from unihema.modeling.model import UniHema
from unihema.pipeline.processing import (PROCESSOR_NAME, ProcessorConfig, ProcessorConfigError,
                                UniHemaProcessor, pad_images, resized_side)


@pytest.fixture(scope="module")
def model(tiny):
    torch.manual_seed(0)
    return UniHema.from_config(load_config(None, tiny + ["model.backbone.small_side=100"]))


# ----------------------------------------------------------------------------- the file
def test_round_trip_of_preprocessor_config(tmp_path):
    proc = UniHemaProcessor(image_size=384, upscale=True, crop_size=64, small_side=100)
    path = proc.save_pretrained(tmp_path)
    assert path == tmp_path / PROCESSOR_NAME
    saved = json.loads(path.read_text())
    assert saved == {"processor_class": "UniHemaProcessor", "image_size": 384, "upscale": True,
                     "crop_size": 64, "small_side": 100, "max_pixel_value": 255.0,
                     "pad_to_multiple": 32}
    assert UniHemaProcessor.from_pretrained(tmp_path) == proc


def test_checkpoints_carry_the_processor_and_older_ones_rebuild_it(model, tmp_path):
    folder = model.save_pretrained(tmp_path / "m", extra={"image_size": 128, "crop_size": 48,
                                                          "upscale": False})
    saved = UniHemaProcessor.from_pretrained(folder)
    assert saved.config == ProcessorConfig(image_size=128, crop_size=48, small_side=100)
    # a checkpoint written before the file existed: the same processor, from config.json
    (folder / PROCESSOR_NAME).unlink()
    assert UniHemaProcessor.from_pretrained(folder) == saved
    # one saved without the trainer's settings gets the defaults
    bare = model.save_pretrained(tmp_path / "bare")
    assert UniHemaProcessor.from_pretrained(bare).config == ProcessorConfig(small_side=100)
    # a processor given explicitly is the one saved
    mine = UniHemaProcessor(image_size=96, small_side=100)
    assert UniHemaProcessor.from_pretrained(
        model.save_pretrained(tmp_path / "mine", processor=mine)) == mine
    # the pipeline reads it: image size, crop size and the reading's cell / field border
    pipe = UniHemaPipeline.from_pretrained(model.save_pretrained(tmp_path / "p", processor=mine))
    assert pipe.processor == mine and pipe.image_size == 96 and pipe.crop_size == 0


@pytest.mark.parametrize("text, message", [
    ("{not json", r"not valid JSON \(line 1"),
    ('["a"]', "expected a JSON object"),
    ('{"image_size": "big"}', r"field 'image_size': expected an integer >= 1, got 'big'"),
    ('{"upscale": 1}', r"field 'upscale': expected true or false"),
    ('{"crop_size": -2}', r"field 'crop_size': expected an integer >= 0"),
    ('{"image_size": true}', r"field 'image_size'"),
    ('{"imagesize": 256}', r"field 'imagesize': unknown field; valid fields: image_size"),
    ('{"processor_class": "CLIPProcessor"}', r"field 'processor_class': expected "
                                             r"'UniHemaProcessor'"),
])
def test_bad_preprocessor_config_is_explained(tmp_path, text, message):
    (tmp_path / PROCESSOR_NAME).write_text(text)
    with pytest.raises(ProcessorConfigError, match=message) as info:
        UniHemaProcessor.from_pretrained(tmp_path)
    assert str(tmp_path / PROCESSOR_NAME) in str(info.value)


def test_a_bad_setting_in_an_older_config_json_names_that_file(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"image_size": 0, "model": {}}))
    with pytest.raises(ProcessorConfigError, match=r"(?s)config.json: .*field 'image_size'"):
        UniHemaProcessor.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="neither"):
        UniHemaProcessor.from_pretrained(tmp_path / "nowhere")


# ----------------------------------------------------------------------------- the rules
def test_the_scale_rule_keeps_a_cell_as_large_as_in_training():
    # larger images shrink to image_size, smaller ones keep their native size (a cell keeps
    # its pixels), unless upscale; single cells go to crop_size when set, capped
    assert resized_side(1000, False, 256) == 256
    assert resized_side(96, False, 256) == 96
    assert resized_side(96, False, 256, upscale=True) == 256
    assert resized_side(0, False, 256) == 256  # unknown size
    assert resized_side(96, True, 256, crop_size=48) == 48
    assert resized_side(96, True, 256, crop_size=500) == 256
    assert resized_side(600, False, 256, crop_size=48) == 256  # a field ignores crop_size
    proc = UniHemaProcessor(image_size=128, crop_size=48, small_side=100)
    assert [proc.side(300, False), proc.side(80, False), proc.side(80, True)] == [128, 80, 48]
    assert [proc.kind(128), proc.kind(80), proc.kind(128, single_cell=True)] == [
        "field", "cell", "cell"]


def test_boxes_and_masks_map_back_to_the_original_image():
    proc = UniHemaProcessor(image_size=128)
    image = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    item = proc.item(image, "detect", classes=["red blood cell"])
    assert item["image"].shape == (3, 128, 85) and item["orig_size"] == (300, 200)
    assert item["scale"] == pytest.approx(128 / 300)
    assert item["prompt"] == proc.prompt("detect", classes=["red blood cell"])
    assert item["image"].dtype == torch.float32 and 0.0 <= float(item["image"].min())
    assert float(item["image"].max()) <= 1.0
    box = [30.0, 60.0, 150.0, 270.0]  # in the original image
    resized = [v * item["scale"] for v in box]
    np.testing.assert_allclose(proc.box_to_original(resized, item["scale"]), box, rtol=1e-6)
    # a mask over the padded batch: its real part, enlarged to the original size
    batch = proc.collate([item])
    mask = torch.zeros(batch["images"].shape[-2:], dtype=torch.int64)
    mask[:64, :] = 1  # the top half of the real image (and padding beside it)
    back = proc.mask_to_original(mask, item["orig_size"], item["scale"])
    assert back.shape == (300, 200) and back.dtype == np.int64
    assert back[:150].min() == 1 and back[150:].max() == 0


def test_padding_matches_the_collate_function():
    images = [torch.rand(3, 40, 70), torch.rand(3, 90, 20)]
    padded, mask = pad_images(images)
    batch = collate([{"task": "classify", "image": im, "label": 0} for im in images])
    assert torch.equal(padded, batch["images"]) and torch.equal(mask, batch["pixel_mask"])
    assert padded.shape == (2, 3, 96, 96)


# ----------------------------------------------------------------------------- one path
@pytest.mark.parametrize("task, kind", [("detect", "field"), ("classify", "crop")])
def test_pipeline_and_evaluation_mapping_give_identical_tensors(model, synth_root, task, kind):
    """The same image through the training data path (evaluation mode) and through the Python
    API: the same pixels, scale and padded batch."""
    sample = next(s for s in load_dataset("synthetic_smear", synth_root, "test")
                  if s.meta.get("kind") == kind and task in s.tasks())
    mapper = DatasetMapper(image_size=128, augment=None, train=False, crop_size=48)
    mapped = mapper(sample, task, np.random.default_rng(0))
    pipe = UniHemaPipeline(model, image_size=128, crop_size=48)
    batch = pipe._batch(sample.image_path, task, mapped["prompt"])
    assert torch.equal(batch["images"], collate([mapped])["images"])
    assert torch.equal(batch["pixel_mask"], collate([mapped])["pixel_mask"])
    assert batch["scales"] == [mapped["scale"]] and batch["orig_sizes"] == [mapped["orig_size"]]
    assert mapper.processor.config == ProcessorConfig(image_size=128, crop_size=48)
