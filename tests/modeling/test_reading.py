"""The model's reading of an image (modeling/reading.py) and how the text tasks use it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unihema.api.pipeline import UniHemaPipeline
from unihema.config import load_config
from unihema.data.catalog import load_dataset
from unihema.pipeline.collate import collate
from unihema.pipeline.mapper import DatasetMapper, TaskDataset
from unihema.modeling.model import UniHema
from unihema.modeling.reading import ReadingCascade, crop_cell

REDS = ["red blood cell", "target cell", "spherocyte"]
WHITES = ["lymphocyte", "monocyte", "segmented neutrophil"]
READING = [
    "model.reading.tasks=[vqa,mlm]",
    "model.reading.detect=[red blood cell,white blood cell,platelet,malaria parasite]",
    "model.reading.types={red blood cell: [red blood cell, target cell, spherocyte], "
    "white blood cell: [lymphocyte, monocyte, segmented neutrophil], "
    "malaria parasite: [ring form]}",
    # a random detector scores ~0.01 everywhere: read its 40 best peaks
    "model.reading.score_threshold=0.0", "model.heads.detect_topk=40",
    "model.text.max_prompt_tokens=160", "model.text.copy=true",
    "model.backbone.small_side=100",  # the test fields are 128 pixels, the crops 96
]


@pytest.fixture(scope="module")
def cfg(tiny):
    return load_config(None, tiny + READING)


@pytest.fixture(scope="module")
def model(cfg):
    torch.manual_seed(0)
    return UniHema.from_config(cfg).eval()


def _batch(cfg, synth_root, task, kind, train=False, n=2):
    samples = [s for s in load_dataset("synthetic_smear", synth_root, "train")
               if s.meta.get("kind") == kind and task in s.tasks()]
    ds = TaskDataset(samples, task, DatasetMapper.from_config(cfg, train=train), train=train)
    return collate([ds[i] for i in range(n)])


def test_a_field_is_read_by_detection_then_typed(cfg, synth_root, monkeypatch):
    torch.manual_seed(0)
    cascade = ReadingCascade(UniHema.from_config(cfg).eval())
    batch = _batch(cfg, synth_root, "vqa", "field")
    readings = cascade.readings(batch)
    assert len(readings) == 2 and all(r["report"].startswith("This field") for r in readings)
    found = cascade.reader.detect([batch["images"][0]], list(cfg.model.reading.detect))[0]
    assert found[0] and len(found[0]) == len(found[1])
    # what is read of what was found: the detector's answer fixed, the typing real
    boxes = ([("red blood cell", [10, 10, 40, 40]), ("red blood cell", [50, 10, 80, 40]),
              ("white blood cell", [60, 60, 100, 100]), ("malaria parasite", [20, 20, 25, 25])])
    monkeypatch.setattr(cascade.reader, "detect", lambda images, classes: [
        ([b[0] for b in boxes], [b[1] for b in boxes], [0.9] * len(boxes)) for _ in images])
    cascade.clear()
    for r in cascade.readings(batch):
        entries = dict(r["entries"])
        assert entries["red blood cell"].startswith("2 red blood cells")
        assert entries["ring form"].startswith("1 ring form top left")
        assert entries["malaria parasite"].startswith("1 malaria parasite top left, a ring form")
        white = entries["white blood cell"].split(", a")[-1].strip(" n")
        assert white in WHITES
        assert sum(k in REDS for k in entries) >= 1
        assert "Ring forms of a malaria parasite are seen in 1 red cell." in r["report"]


def test_a_single_cell_is_typed_per_lineage_and_described(model, cfg, synth_root):
    batch = _batch(cfg, synth_root, "vqa", "crop", n=4)
    for r in ReadingCascade(model).readings(batch):
        entries = dict(r["entries"])
        assert entries["red blood cell"].split(" type ")[1] in REDS
        assert entries["white blood cell"].split(" type ")[1] in WHITES
        assert {"cell size", "nucleus shape"} <= set(entries)  # the morphology head's reading
        named = [t for t in REDS + WHITES if f" {t}" in r["report"]]
        assert len(named) == 1, r["report"]
        # the report describes the look of a white cell, not of a red one
        assert (" with " in r["report"]) == (named[0] in WHITES)


def test_readings_are_cached_by_image_content(cfg, synth_root, monkeypatch):
    torch.manual_seed(0)
    m = UniHema.from_config(cfg).eval()
    cascade = ReadingCascade(m)
    batch = _batch(cfg, synth_root, "vqa", "field")
    first = cascade.readings(batch)
    calls = []
    monkeypatch.setattr(cascade.reader, "detect", lambda *a, **k: calls.append(1))
    assert cascade.readings(batch) == first and not calls
    cascade.clear()  # new weights: what was read is forgotten
    with pytest.raises(TypeError):  # the patched detector runs again, and returns nothing
        cascade.readings(batch)
    assert calls
    # a cascade of its own reads afresh, and as the first one did
    assert ReadingCascade(m).readings(batch) == first


def test_the_cascade_runs_outside_the_model(model, cfg, synth_root):
    """No switch on the module: what the text tasks read is the cascade's, added to the batch
    before the model runs; other tasks pass through untouched."""
    assert not hasattr(model, "reading_source") and not hasattr(model, "_reader")
    batch = _batch(cfg, synth_root, "vqa", "field")
    own, truth = ReadingCascade(model), ReadingCascade(model, source="truth")
    read = own(batch)
    assert read is not batch and read["reading_source"] == "model"
    assert read["readings"] == own.readings(batch) != list(batch["readings"])
    assert truth(batch)["readings"] == list(batch["readings"])
    assert truth(batch)["reading_source"] == "truth"
    # the model's answers follow the cascade's readings; a bare batch is read by the model's
    # own cascade, so it answers as with ReadingCascade(model)
    assert [p["text"] for p in model.predict(batch)] == [p["text"] for p in own.predict(batch)]
    detect = _batch(cfg, synth_root, "detect", "field")
    assert own(detect) is detect
    with pytest.raises(KeyError, match="source='truth' needs 'readings'"):
        truth.readings({k: v for k, v in batch.items() if k != "readings"})
    with pytest.raises(ValueError, match="model, truth"):
        ReadingCascade(model, source="oracle")


def test_training_prompts_carry_the_annotations_reading(model, cfg, synth_root, monkeypatch):
    batch = _batch(cfg, synth_root, "vqa", "field", train=True)
    seen = []
    real = model.fuse
    monkeypatch.setattr(model, "fuse", lambda v, pm, prompts, readings=None: seen.append(
        (prompts, readings)) or real(v, pm, prompts, readings))
    model.train()
    try:
        model(batch)
    finally:
        model.eval()
    question = batch["questions"][0]
    entries = dict(batch["readings"][0]["entries"])
    prompts, readings = seen[0]
    assert prompts == batch["prompts"]
    named = [t for k, t in entries.items() if k in question]
    assert all(t in readings[0] for t in named) and (named or readings[0] == "nothing")
    bare = {k: v for k, v in batch.items() if k != "readings"}
    model.train()
    try:
        with pytest.raises(KeyError, match="readings"):
            model(bare)
    finally:
        model.eval()


def test_truth_reading_as_an_oracle_and_mlm_hints(model, cfg, synth_root, monkeypatch):
    batch = _batch(cfg, synth_root, "mlm", "field")
    seen = []
    real = model.fuse
    monkeypatch.setattr(model, "fuse", lambda v, pm, prompts, readings=None: seen.append(
        readings) or real(v, pm, prompts, readings))
    ReadingCascade(model, source="truth").predict(batch)
    # with the true report the passage at each blank is the masked words themselves
    target = batch["targets"][0]
    assert seen[0][0] == target.rsplit(" ", 1)[0]


def test_pipeline_read(model, synth_root):
    field = next(s for s in load_dataset("synthetic_smear", synth_root, "test")
                 if s.meta.get("kind") == "field")
    out = UniHemaPipeline(model, image_size=128).read(field.image_path)
    assert out["report"].startswith("This field")
    assert all(isinstance(e["text"], str) and 0.0 <= e["confidence"] <= 1.0
               for e in out["entries"])


def test_crop_cell_centres_the_box_and_pads_with_the_median():
    image = torch.full((3, 50, 60), 0.5)
    image[:, 0:10, 0:10] = 1.0
    crop = crop_cell(image, (0, 0, 10, 10), 32)
    assert crop.shape == (3, 32, 32)
    assert torch.all(crop[:, 16, 16] == 1.0)  # the box centre is the crop centre
    assert torch.all(crop[:, 0, 0] == 0.5)  # outside the image: the median colour
    big = crop_cell(image, (0, 0, 60, 50), 32)  # a box larger than the crop is resized down
    assert big.shape == (3, 32, 32)
    np.testing.assert_allclose(big.mean().item(), 0.5, atol=0.1)


def test_reading_goes_to_text_tasks_only(tiny):
    with pytest.raises(ValueError, match="not text tasks"):
        UniHema.from_config(load_config(None, tiny + ["model.reading.tasks=[vqa,detect]"]))
