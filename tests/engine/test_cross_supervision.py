"""data.cross_supervision through the trainer: a real short run, and the setup check."""

from __future__ import annotations

import math

import pytest

from unihema.config.loader import load_config
from unihema.engine.trainer import Trainer

CROSS = "data.cross_supervision={morphology: [classify], classify: [morphology]}"


def test_a_run_with_cross_supervision_trains_both_cell_heads(run_config):
    path = run_config("cross", tasks=("classify", "morphology"), max_steps=40, save_every=0)
    trainer = Trainer(load_config(str(path), [CROSS]), progress=False)
    seen = {}  # loss names per task over batches (a batch of red cells states no attributes)
    for i, batch in enumerate(trainer.loader):
        seen.setdefault(batch["task"], set()).update(
            trainer.model(batch, objectives=trainer.objectives))
        if len(seen) == 2 and len(seen["classify"]) == 2 or i == 40:
            break
    assert seen == {"morphology": {"loss_morphology_attr", "loss_morphology_text",
                                   "loss_classify_ce"},
                    "classify": {"loss_classify_ce", "loss_morphology_attr"}}
    trainer = Trainer(load_config(str(path), [CROSS, "train.max_steps=3"]), progress=False)
    running = trainer.train(save=False)
    assert trainer.step == 3 and all(math.isfinite(v) for v in running.values())


def test_cross_supervision_by_a_missing_head_stops_before_training(run_config):
    cfg = load_config(str(run_config("cross-missing", tasks=("morphology",))),
                      [CROSS, "model.tasks=[morphology]"])
    with pytest.raises(KeyError, match=r"data.cross_supervision.morphology: \['classify'\] "
                                       r"have no head"):
        Trainer(cfg, progress=False)
