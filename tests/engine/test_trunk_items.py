"""data.trunk_items through the trainer: a real short run, and the setup check."""

from __future__ import annotations

import json
import math

import pytest

from unihema.config.loader import load_config
from unihema.engine.trainer import Trainer

TRUNK = ["data.trunk_items={classify: 3}", "train.loss_weights.loss_classify_trunk_ce=1.0"]


def test_a_run_with_trunk_items_trains_their_term(run_config):
    path = run_config("trunk", tasks=("classify",), max_steps=3, save_every=0)
    trainer = Trainer(load_config(str(path), TRUNK), progress=False)
    assert trainer.trunk_items == {"classify": 3}
    running = trainer.train(save=False)
    assert trainer.step == 3 and all(math.isfinite(v) for v in running.values())
    rows = [json.loads(line) for line in (trainer.out / "metrics.jsonl").read_text().splitlines()]
    terms = {k for r in rows if r.get("task") == "classify" for k in r}
    assert "loss_classify_trunk_ce" in terms, rows[:3]


def test_trunk_items_without_a_weight_stop_before_training(run_config):
    cfg = load_config(str(run_config("trunk-weight", tasks=("classify",))), TRUNK[:1])
    with pytest.raises(KeyError, match=r"data.trunk_items.classify is set but "
                                       r"train.loss_weights has no loss_classify_trunk_<term>"):
        Trainer(cfg, progress=False)
