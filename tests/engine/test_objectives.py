"""Training objectives beside a batch's own loss: cross-supervision and deep supervision of
the trunk, composed by the trainer and computed in the model's one forward pass."""

from __future__ import annotations

import pytest
import torch

from unihema.config import load_config
from unihema.engine.objectives import (CrossSupervision, TrunkSupervision, build_objectives,
                                       cross_tasks)
from unihema.modeling.model import UniHema
from unihema.modeling.types import Batch

CELLS = ["neutrophil", "lymphocyte", "monocyte"]

#: The loss dicts of the batches of :func:`fixed_batches` under the tiny model (seed 0),
#: recorded before the forward pass was split into the model and the trainer's objectives
#: (then: one forward that read ``cross_tasks`` and ``trunk_items`` from the batch). The same
#: numbers now mean the same behaviour; a deliberate change of the model re-records them.
REFERENCE = {
    "classify": {"loss_classify_ce": 1.437612533569336},
    "morphology": {"loss_morphology_attr": 1.3215075731277466,
                   "loss_morphology_text": 6.973100662231445},
    "detect": {"loss_detect_heatmap": 9.557640075683594,
               "loss_detect_box": 0.44866275787353516},
    "segment": {"loss_segment_ce": 2.257417917251587, "loss_segment_dice": 0.7302235960960388},
    "vqa": {"loss_vqa_ce": 6.72264289855957},
    "cross_morphology": {"loss_morphology_attr": 1.3215075731277466,
                         "loss_morphology_text": 6.973100662231445,
                         "loss_classify_ce": 1.476872444152832},
    "cross_classify": {"loss_classify_ce": 1.437612533569336,
                       "loss_morphology_attr": 1.309215784072876},
    "trunk_morphology": {"loss_morphology_attr": 2.001919984817505,
                         "loss_morphology_text": 6.75406551361084,
                         "loss_classify_ce": 0.6851176619529724,
                         "loss_morphology_trunk_attr": 0.6093916296958923,
                         "loss_classify_trunk_ce": 1.6854884624481201},
}


def fixed_batches():
    """Hand-built batches of five tasks (random pixels from a seeded generator; the second
    item of each padded on the right)."""
    g = torch.Generator().manual_seed(3)

    def base(task, n, prompts):
        mask = torch.ones(n, 128, 128, dtype=torch.bool)
        mask[1, :, 96:] = False
        return {"task": task, "images": torch.rand(n, 3, 128, 128, generator=g),
                "pixel_mask": mask, "prompts": prompts, "keys": [f"k{i}" for i in range(n)],
                "orig_sizes": [(128, 128)] * n, "scales": [1.0] * n}

    out = {}
    out["classify"] = dict(base("classify", 3, ["what cell type is this?"] * 3),
                           classes=[CELLS] * 3, labels=torch.tensor([0, 2, 1]),
                           attributes=[{"nucleus_shape": "segmented-bilobed"}, {},
                                       {"cell_size": "big"}],
                           cross_tasks=[["morphology"]] * 3)
    out["morphology"] = dict(base("morphology", 4, ["describe this cell"] * 4),
                             classes=[CELLS] * 4, labels=torch.tensor([0, -1, 1, 2]),
                             attributes=[{"nucleus_shape": "segmented-bilobed"}, {},
                                         {"cell_size": "big"}, {}],
                             targets=["a segmented neutrophil", "a round cell", "no granules",
                                      "big"], cross_tasks=[["classify"]] * 4)
    out["detect"] = dict(base("detect", 2, ["find the cells"] * 2),
                         classes=[["red blood cell", "platelet"]] * 2,
                         boxes=[torch.tensor([[10., 10., 40., 40.], [60., 60., 80., 90.]]),
                                torch.tensor([[5., 5., 30., 25.]])],
                         box_classes=[torch.tensor([0, 1]), torch.tensor([1])])
    out["segment"] = base("segment", 2, ["segment"] * 2)
    masks = torch.randint(0, 3, (2, 128, 128), generator=g)
    masks[1, :, 96:] = -1
    out["segment"].update(masks=masks,
                          classes=[["background", "red blood cell", "white blood cell"]] * 2)
    out["vqa"] = dict(base("vqa", 2, ["how many platelets?", "is there a blast?"]),
                      targets=["three", "no"])
    return out


@pytest.fixture(scope="module")
def model(tiny):
    torch.manual_seed(0)
    return UniHema.from_config(load_config(None, tiny)).train()


def _close(losses, expected):
    assert list(losses) == list(expected)  # the same terms in the same order (the sum's order)
    for name, value in expected.items():
        assert float(losses[name].detach()) == pytest.approx(value, rel=1e-5, abs=1e-6), name


def test_the_losses_of_a_fixed_batch_are_those_recorded_before_the_split(model):
    batches = fixed_batches()
    for task in ("classify", "morphology", "detect", "segment", "vqa"):
        plain = {k: v for k, v in batches[task].items() if k != "cross_tasks"}
        _close(model(plain), REFERENCE[task])
    cross = [CrossSupervision()]
    _close(model(batches["morphology"], objectives=cross), REFERENCE["cross_morphology"])
    _close(model(batches["classify"], objectives=cross), REFERENCE["cross_classify"])
    trunk = cross + [TrunkSupervision({"morphology": 2})]
    _close(model(batches["morphology"], objectives=trunk), REFERENCE["trunk_morphology"])


def test_without_objectives_a_batch_trains_its_own_head_only(model):
    b = fixed_batches()["morphology"]
    assert set(model(b)) == {"loss_morphology_attr", "loss_morphology_text"}
    # an objective for another task reserves no item of this batch
    assert set(model(b, objectives=[TrunkSupervision({"classify": 3})])) == set(model(b))


def test_trunk_terms_score_the_trunk_alone(model):
    """The trunk items' terms are the heads' cross losses on ``trunk_view`` of their pooled
    trunk features: the same numbers from a separate pass (the tiny trunk uses GroupNorm)."""
    b = fixed_batches()["morphology"]
    losses = model(b, objectives=[TrunkSupervision({"morphology": 2})])
    assert set(losses) == {"loss_morphology_attr", "loss_morphology_text",
                           "loss_morphology_trunk_attr", "loss_classify_trunk_ce"}
    tail = Batch.from_dict(b).slice(2, 4)
    view = model.trunk_view(model.encode_image(tail.images, tail.pixel_mask,
                                               dense=False)["pooled"])
    expect = model.heads["classify"].cross_loss(view, tail)["loss_classify_ce"]
    torch.testing.assert_close(losses["loss_classify_trunk_ce"], expect)
    with pytest.raises(ValueError, match="trunk_items = 4 leaves no item of a batch of 4"):
        model(b, objectives=[TrunkSupervision({"morphology": 4})])


def test_cross_tasks_name_a_missing_head(tiny):
    torch.manual_seed(0)
    only = UniHema.from_config(load_config(None, tiny + ["model.tasks=[morphology]"]))
    b = fixed_batches()["morphology"]
    with pytest.raises(KeyError, match="carries 'classify' targets.*no 'classify' head"):
        cross_tasks(only, b)
    with pytest.raises(KeyError, match="carries 'classify' targets.*no 'classify' head"):
        only(b, objectives=[CrossSupervision()])


def test_build_objectives_follows_the_config():
    cfg = load_config(None, ["data.cross_supervision={}"])
    assert build_objectives(cfg, {}) == []
    cfg = load_config(None, ["data.cross_supervision={morphology: [classify]}"])
    objectives = build_objectives(cfg, {"classify": 3})
    assert [type(o).__name__ for o in objectives] == ["CrossSupervision", "TrunkSupervision"]
    assert objectives[1].items == {"classify": 3}
