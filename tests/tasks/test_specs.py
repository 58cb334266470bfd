"""The built-in task specs: registered in order, each naming an existing head, evaluator,
gallery and plots, and each mapping real samples into items that collate as it declares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unihema.config.schema import AugmentConfig
from unihema.data.catalog import load_dataset
from unihema.pipeline.collate import collate
from unihema.pipeline.mapper import DatasetMapper, TaskDataset
from unihema.data.sample import TASKS as BUILTIN
from unihema.evaluation import EVALUATORS
from unihema.evaluation import tasks as _evaluators  # noqa: F401  (registers the evaluators)
from unihema.evaluation.plots import GALLERIES, PLOTS
from unihema.modeling import model as _heads  # noqa: F401  (registers the heads)
from unihema.modeling.heads import HEADS
from unihema.tasks import (BASE_FIELDS, GEOMETRIES, TASKS, Metric, Task, TaskPrompts,
                           batch_fields, get_task, register, specs)


def test_builtin_tasks_are_registered_in_order():
    assert list(TASKS)[:len(BUILTIN)] == list(BUILTIN)
    assert [s.name for s in specs()][:len(BUILTIN)] == list(BUILTIN)
    with pytest.raises(KeyError, match="unknown task 'count'"):
        get_task("count")


@pytest.mark.parametrize("name", BUILTIN)
def test_each_spec_names_existing_parts(name):
    spec = get_task(name)
    assert spec.name == name
    assert spec.head in HEADS and HEADS.get(spec.head).task == name
    assert spec.evaluator in EVALUATORS and EVALUATORS.get(spec.evaluator).task == name
    assert spec.gallery is None or spec.gallery in GALLERIES
    assert all(p in PLOTS for p in spec.plots)
    assert set(spec.geometry) <= set(GEOMETRIES)
    assert spec.metric_order()[0] == spec.headline.name and spec.headline.label
    assert all(other in TASKS and name in get_task(other).cross_targets
               for other in spec.cross_targets)  # pairs go both ways
    assert spec.prompts.eval in spec.prompts.train
    batch_fields(name, spec.cross_targets)  # no field declared two ways


def test_capabilities_are_spec_attributes():
    def having(attr):
        return [s.name for s in specs() if getattr(s, attr)]

    assert having("relabels") == ["detect", "classify", "segment"]
    assert having("takes_candidates") == ["detect", "classify"]
    assert having("trunk") == having("balance") == ["classify", "morphology"]
    assert having("grounded") == ["mlm", "vqa"]
    assert [s.name for s in specs() if s.gallery] == ["detect", "classify", "segment", "vqa"]


def test_default_classes_of_the_dense_tasks(samples):
    field = next(s for s in samples if s.meta.get("kind") == "field")
    assert get_task("detect").default_classes(field) == field.meta["classes_detect"]
    assert get_task("segment").default_classes(field) == [
        field.mask_values[v] for v in sorted(field.mask_values)]
    assert get_task("vqa").default_classes(field) is None


@pytest.fixture(scope="module")
def samples(synth_root):
    return load_dataset("synthetic_smear", synth_root, "train")


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("name", BUILTIN)
def test_each_task_maps_and_collates_as_declared(samples, name, train):
    spec = get_task(name)
    mapper = DatasetMapper(image_size=96, augment=AugmentConfig() if train else None,
                           train=train, crop_size=48)
    ds = TaskDataset(samples, name, mapper, train=train, seed=1)
    assert len(ds) == sum(len(spec.item_indices(s)) for s in samples if spec.supervises(s))
    items = [ds[i] for i in range(3)]
    fields = {f.item: f for f in BASE_FIELDS + spec.fields}
    for item in items:
        assert set(item) == {"task", "image", *fields}, name
    batch = collate(items)
    assert batch["task"] == name and batch["images"].shape[0] == 3
    for f in fields.values():
        value = batch[f.batch]
        if f.collate == "list":
            assert isinstance(value, list) and len(value) == 3, f
        else:
            assert torch.is_tensor(value) and value.dtype == f.dtype, f
            assert value.shape == ((3,) if f.collate == "stack" else
                                   (3, *batch["images"].shape[-2:])), f


def test_cross_supervised_items_carry_and_collate_the_other_tasks_targets(samples):
    mapper = DatasetMapper(image_size=96, augment=None, train=True,
                           cross={"morphology": ["classify"]})
    items = [mapper(s, "morphology", np.random.default_rng(i))
             for i, s in enumerate(s for s in samples if get_task("morphology").supervises(s))][:2]
    batch = collate(items)
    assert batch["cross_tasks"] == [["classify"]] * 2
    assert batch["labels"].dtype == torch.int64 and len(batch["classes"]) == 2


def test_register_checks_the_spec():
    class Bad(Task):
        name = head = evaluator = "bad_geometry"
        prompts = TaskPrompts((), "x", ("x",))
        geometry = ("shear",)
        headline = Metric("m", "m")

    with pytest.raises(ValueError, match=r"geometry \['shear'\] unknown"):
        register(Bad)

    class Untrained(Bad):
        name = "untrained_eval"
        geometry = ()
        prompts = TaskPrompts((), "x", ("y",))

    with pytest.raises(ValueError, match="must also be a training one"):
        register(Untrained)

    class Fields(Bad):
        name = "wrong_fields"
        geometry = ()
        prompts = TaskPrompts(("question",), "x", ("x",))

    with pytest.raises(ValueError, match="does not use exactly the fields"):
        register(Fields)
    assert not {"bad_geometry", "untrained_eval", "wrong_fields"} & set(TASKS)
