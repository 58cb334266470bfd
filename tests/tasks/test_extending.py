"""Adding a seventh task, as docs/model.md "Extending" shows: one task module plus its head.

The example is a tiny ``count`` task: the prompt "how many cells?", an integer target (the
boxes of a field) and a small regression head on the joint embedding. Everything it needs
is registered here, the way a plugin module would register it, and removed afterwards; a
config file then names ``count`` like any built-in task.
"""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from unihema.config import ConfigError, load_config
from unihema.config.schema import TASK_NAMES
from unihema.tasks import prompts
from unihema.pipeline.collate import collate
from unihema.pipeline.mapper import DatasetMapper, TaskDataset
from unihema.data.sample import UnifiedSample
from unihema.evaluation import EVALUATORS, Evaluator
from unihema.modeling.heads import HEADS, TaskHead
from unihema.modeling.model import UniHema
from unihema.tasks import TASKS, Field, Metric, Task, TaskPrompts, get_task, register


# ----------------------------------------------------------------------------- the task module
class CountTask(Task):
    """``count``: how many cells a field holds. Item: ``count`` int, batched as ``counts
    int64 [B]``."""

    name = head = evaluator = "count"
    prompts = TaskPrompts((), "how many cells?",
                          ("how many cells?", "Count the cells in this field."))
    geometry = ("flip", "rot90", "scale")  # a crop could cut cells off: no crop
    fields = (Field("count", "counts", collate="stack"),)
    headline = Metric("count_mae", "mean absolute counting error")
    unit = "fields"

    def supervises(self, sample: UnifiedSample) -> bool:
        return sample.boxes is not None

    def map_item(self, sample, out, *, text_rng, rng, qa_index, train) -> None:
        out["count"] = int(sample.num_boxes)
        out["prompt"] = self.render_prompt(text_rng)


class CountEvaluator(Evaluator):
    """Mean absolute error of the predicted counts."""

    task = "count"

    def __init__(self, **options: Any) -> None:
        self.reset()

    def reset(self) -> None:
        self.errors: List[float] = []

    def process(self, batch, predictions) -> None:
        for truth, pred in zip(batch["counts"].tolist(), predictions):
            self.errors.append(abs(pred["count"] - truth))

    def evaluate(self) -> Dict[str, float]:
        return {"count_mae": float(np.mean(self.errors)) if self.errors else float("nan")}


# ----------------------------------------------------------------------------- its head
class CountHead(TaskHead):
    """A small regression on the joint embedding: ``pred_count [B]`` (a log count)."""

    task = "count"
    dense = False  # reads only the joint embedding

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, 1))

    @classmethod
    def from_config(cls, cfg) -> "CountHead":
        return cls(cfg.d_model)

    def forward(self, fused, batch) -> Dict[str, Any]:
        return {"pred_count": self.mlp(fused["joint"]).squeeze(-1)}

    def loss(self, outputs, batch) -> Dict[str, torch.Tensor]:
        target = torch.log1p(batch["counts"].float())
        return {"loss_count_l1": F.smooth_l1_loss(outputs["pred_count"], target)}

    @torch.no_grad()
    def postprocess(self, outputs, batch) -> List[Dict[str, Any]]:
        return [{"count": int(round(float(torch.expm1(v.clamp(min=0)))))}
                for v in outputs["pred_count"]]


# ----------------------------------------------------------------------------- the test
@pytest.fixture
def count_task():
    register(CountTask)
    HEADS.register("count", CountHead)
    EVALUATORS.register("count", CountEvaluator)
    yield get_task("count")
    for registry in (TASKS, HEADS, EVALUATORS):
        registry.unregister("count")


@pytest.fixture
def fields(tmp_path) -> List[UnifiedSample]:
    rng = np.random.default_rng(0)
    out = []
    for i, n in enumerate((3, 5)):
        path = tmp_path / f"f{i}.png"
        Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(path)
        boxes = np.array([[4 * k, 4, 4 * k + 6, 10] for k in range(n)], np.float32)
        out.append(UnifiedSample(dataset="toy", split="train", sample_id=f"f{i}",
                                 image_path=str(path), width=80, height=60, boxes=boxes,
                                 box_labels=["red blood cell"] * n).check())
    return out


def _count_config(folder) -> str:
    """A config file that names the ``count`` task wherever a config names tasks."""
    path = folder / "count.yaml"
    path.write_text("model:\n  tasks: [count]\n  reading: {tasks: []}\n"
                    "data:\n  train: [{name: synthetic_smear, tasks: [count]}]\n"
                    "  task_weights: {count: 2.0}\n  task_batch_size: {count: 4}\n"
                    "train:\n  loss_weights: {loss_count_l1: 1.0}\n", encoding="utf-8")
    return str(path)


def test_a_seventh_task_maps_collates_trains_and_predicts(count_task, fields, tiny, tmp_path):
    assert count_task.head == "count" and "count" in list(TASKS)
    assert prompts.render("count") == "how many cells?"

    mapper = DatasetMapper(image_size=64, augment=None, train=False)
    ds = TaskDataset(fields, "count", mapper, train=False)
    items = [ds[0], ds[1]]
    assert [it["count"] for it in items] == [3, 5]
    assert items[0]["prompt"] == "how many cells?" and max(items[0]["image"].shape) == 64
    batch = collate(items)
    assert batch["task"] == "count" and batch["counts"].tolist() == [3, 5]
    assert batch["counts"].dtype == torch.int64 and batch["images"].shape == (2, 3, 64, 64)

    cfg = load_config(_count_config(tmp_path), tiny)
    assert cfg.model.tasks == ["count"]
    torch.manual_seed(0)
    model = UniHema.from_config(cfg)
    losses = model(batch)
    assert set(losses) == {"loss_count_l1"} and torch.isfinite(losses["loss_count_l1"])
    losses["loss_count_l1"].backward()
    assert model.heads["count"].mlp[0].weight.grad is not None

    preds = model.predict(batch)
    assert len(preds) == 2 and all(isinstance(p["count"], int) for p in preds)
    evaluator = EVALUATORS.get(count_task.evaluator)()
    evaluator.process(batch, preds)
    assert count_task.headline.name in evaluator.evaluate()


def test_a_training_mapper_applies_the_tasks_own_augmentations(count_task, fields):
    from unihema.config.schema import AugmentConfig

    mapper = DatasetMapper(image_size=64, augment=AugmentConfig(crop=1.0), train=True)
    item = mapper(fields[1], "count", np.random.default_rng(1))
    assert item["count"] == 5  # no crop dropped a cell
    assert item["prompt"] in count_task.prompts.train


def test_a_config_names_a_task_while_it_is_registered(tmp_path):
    path = _count_config(tmp_path)
    with pytest.raises(ConfigError, match=r"model\.tasks\.0: expected one of \['detect', "
                       r"'classify', 'segment', 'morphology', 'mlm', 'vqa'\], got 'count'"):
        load_config(path)
    register(CountTask)
    try:
        assert "count" in TASK_NAMES
        cfg = load_config(path, ["data.balance.count=0.5"])
        assert cfg.data.train[0].tasks == ["count"] and cfg.data.task_weights == {"count": 2.0}
        assert cfg.data.balance == {"count": 0.5}
    finally:
        TASKS.unregister("count")
    assert "count" not in TASK_NAMES  # unregistering a task also removes its name
    with pytest.raises(ConfigError, match="data.train.0.tasks.0: expected one of"):
        load_config(path)
