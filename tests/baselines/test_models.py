"""The specialist baselines: losses, prediction formats (scored by the real evaluators),
checkpoint round trips and class-name mapping, on tiny synthetic batches."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from unihema.baselines.models import (BASELINES, UnknownClassError, build_baseline,
                                      load_baseline, save_baseline)
from unihema.config import load_config
from unihema.config.schema import DatasetEntry
from unihema.pipeline.collate import collate
from unihema.engine.data import build_task_splits
from unihema.evaluation import EVALUATORS
from unihema.evaluation import tasks as _register  # noqa: F401  (registers the evaluators)

SIZE = 64
ARCHS = ["fcos_resnet18", "fasterrcnn_resnet18", "unet_resnet18", "resnet18_classifier"]
MAIN_METRIC = {"detect": "mAP", "segment": "pixel_accuracy", "classify": "accuracy"}


@pytest.fixture(scope="module")
def batches(synth_root):
    """task -> an evaluation batch of 2 synthetic items at 64 px."""
    cfg = load_config(None, [f"data.image_size={SIZE}"])
    entry = DatasetEntry(name="synthetic_smear", root=str(synth_root), split="train")
    out = {}
    for split in build_task_splits([entry], cfg, train=False,
                                   tasks=["detect", "segment", "classify"]):
        out[split.task] = collate([split.dataset[i] for i in range(2)])
    return out


_PROTOTYPES = {}


def make(arch, batch):
    """A fresh model of ``arch`` knowing the classes of ``batch`` (a copy of one built once per
    module: initialising the large layers costs more than the tests)."""
    names = sorted({c for cl in batch["classes"] for c in cl})
    if batch["task"] == "segment":
        names = ["background"] + [n for n in names if n != "background"]
    key = (arch, tuple(names))
    if key not in _PROTOTYPES:
        torch.manual_seed(0)
        _PROTOTYPES[key] = BASELINES.get(arch)(classes=names, image_size=SIZE)
    return copy.deepcopy(_PROTOTYPES[key])


@pytest.mark.parametrize("arch", ARCHS)
def test_loss_finite_and_reaches_parameters(arch, batches):
    model = BASELINES.get(arch)
    batch = batches[model.task]
    model = make(arch, batch).train()
    losses = model.loss(batch)
    assert losses and all(k.startswith(f"loss_{model.task}_") for k in losses)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    without = [n for n, p in params if p.grad is None]
    assert not without, without[:5]
    assert any(p.grad.abs().sum() > 0 for n, p in params if "conv1" in n)


@pytest.mark.parametrize("arch", ["fcos_resnet18", "fasterrcnn_resnet18"])
def test_detector_loss_with_an_empty_image(arch, batches):
    batch = dict(batches["detect"])
    batch["boxes"] = [torch.zeros((0, 4))] + list(batch["boxes"][1:])
    batch["box_classes"] = [torch.zeros((0,), dtype=torch.long)] + list(batch["box_classes"][1:])
    model = make(arch, batch).train()
    assert torch.isfinite(sum(model.loss(batch).values()))


@pytest.mark.parametrize("arch", ARCHS)
def test_predict_formats_feed_the_evaluator(arch, batches):
    task = BASELINES.get(arch).task
    batch = batches[task]
    model = make(arch, batch)
    model.train()
    preds = model.predict(batch)
    assert model.training  # predict restores the mode
    assert len(preds) == len(batch["keys"])
    for i, p in enumerate(preds):
        n_cls = len(batch["classes"][i])
        if task == "detect":
            k = p["boxes"].shape[0]
            assert p["boxes"].shape == (k, 4) and p["scores"].shape == (k,)
            assert p["classes"].dtype == torch.long and p["classes"].shape == (k,)
            assert k == 0 or (0 <= int(p["classes"].min()) and int(p["classes"].max()) < n_cls)
            h, w = batch["pixel_mask"][i].any(1).sum(), batch["pixel_mask"][i].any(0).sum()
            assert k == 0 or (float(p["boxes"][:, 2].max()) <= w and
                              float(p["boxes"][:, 3].max()) <= h)
        elif task == "segment":
            assert p["mask"].shape == batch["masks"].shape[1:]
            assert int(p["mask"].min()) >= 0 and int(p["mask"].max()) < n_cls
        else:
            assert p["probs"].shape == (n_cls,)
            assert abs(float(p["probs"].sum()) - 1) < 1e-5 and 0 <= p["label"] < n_cls
    ev = EVALUATORS.get(task)()
    ev.reset()
    ev.process(batch, preds)
    assert MAIN_METRIC[task] in ev.evaluate()


@pytest.mark.parametrize("arch", ARCHS)
def test_save_load_round_trip(arch, batches, tmp_path):
    task = BASELINES.get(arch).task
    batch = batches[task]
    model = make(arch, batch)
    if task != "detect":  # move BatchNorm statistics off their initial values
        model.train()
        model.loss(batch)
    before = model.predict(batch)
    save_baseline(model, tmp_path / "m", {"train": {"steps": 0}})
    meta = json.loads((tmp_path / "m" / "baseline.json").read_text())
    assert meta["arch"] == arch and meta["task"] == task and meta["classes"] == model.classes
    assert meta["image_size"] == SIZE and meta["train"] == {"steps": 0}
    loaded = load_baseline(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.classes == model.classes
    after = loaded.predict(batch)
    for a, b in zip(before, after):
        for key in a:
            assert torch.equal(torch.as_tensor(a[key]), torch.as_tensor(b[key])), key


@pytest.mark.parametrize("arch", ARCHS)
def test_unknown_prompted_class_is_an_error(arch, batches):
    task = BASELINES.get(arch).task
    batch = batches[task]
    model = make(arch, batch)
    bad = dict(batch, classes=[["no such cell"] + list(batch["classes"][0][1:])]
               + list(batch["classes"][1:]))
    with pytest.raises(UnknownClassError, match="no such cell"):
        model.predict(bad)
    with pytest.raises(UnknownClassError, match="not trained on"):
        model.train().loss(bad)


def test_prompted_subset_restricts_the_answer(batches):
    batch = batches["classify"]
    model = make("resnet18_classifier", batch)
    sub = [list(c[:3]) for c in batch["classes"]]
    labels = torch.zeros_like(batch["labels"])
    preds = model.predict(dict(batch, classes=sub, labels=labels))
    assert all(p["probs"].shape == (3,) and abs(float(p["probs"].sum()) - 1) < 1e-5
               for p in preds)
    batch = batches["detect"]
    model = make("fcos_resnet18", batch)
    one = [[c[0]] for c in batch["classes"]]
    assert all(set(p["classes"].tolist()) <= {0} for p in model.predict(dict(batch, classes=one)))


def test_norms_and_registry():
    det = build_baseline("fcos_resnet18", classes=["a", "b"], image_size=SIZE)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in det.modules())
    cls = build_baseline("resnet18_classifier", classes=["a", "b"], image_size=SIZE,
                         norm="frozen_batch")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in cls.modules())
    assert set(ARCHS) <= set(BASELINES.names())
    with pytest.raises(ValueError, match="is a segmenter, not a detector"):
        build_baseline("unet_resnet18", kind="detector", classes=["a"], image_size=SIZE)
    with pytest.raises(ValueError, match="duplicate"):
        build_baseline("unet_resnet18", classes=["a", "a"], image_size=SIZE)
    with pytest.raises(KeyError, match="Registered"):
        BASELINES.get("yolo")


def test_load_errors(tmp_path):
    model = build_baseline("resnet18_classifier", classes=["a", "b"], image_size=SIZE)
    with pytest.raises(FileNotFoundError, match="no baseline.json"):
        load_baseline(tmp_path / "nothing")
    d = save_baseline(model, tmp_path / "m")
    meta_path = d / "baseline.json"
    meta = json.loads(meta_path.read_text())

    meta_path.write_text(json.dumps(dict(meta, arch="yolo")))
    with pytest.raises(KeyError, match="unknown baseline arch 'yolo'"):
        load_baseline(d)
    # weights of two classes into a model of three: a shape mismatch
    three = dict(meta, kwargs=dict(meta["kwargs"], classes=["a", "b", "c"]))
    meta_path.write_text(json.dumps(three))
    with pytest.raises(ValueError, match="does not fit"):
        load_baseline(d)
    # another backbone: missing and unexpected keys
    r34 = dict(meta, kwargs=dict(meta["kwargs"], backbone="resnet34"))
    meta_path.write_text(json.dumps(r34))
    with pytest.raises(ValueError, match="does not fit"):
        load_baseline(d)
    meta_path.write_text(json.dumps(meta))
    with open(d / "model.safetensors", "r+b") as fh:
        fh.truncate(1000)
    with pytest.raises(ValueError, match="sha256"):
        load_baseline(d)
    (d / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing"):
        load_baseline(d)
    assert not [p.name for p in d.iterdir() if p.name.endswith(".tmp")]
