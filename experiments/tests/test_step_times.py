"""experiments/step_times.py: per-task step times of a real (tiny) training setup."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from unihema.config.loader import load_config
from unihema.engine.trainer import Trainer

REPO = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location(
        "step_times", REPO / "experiments" / "step_times.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_task_of_the_mixture_is_timed_and_trains(tiny, synth_root, tmp_path):
    entry = (f"data.train=[{{name: synthetic_smear, root: '{synth_root}', split: train, "
             f"tasks: [detect, classify, vqa]}}]")
    weights = ("train.loss_weights={loss_detect_heatmap: 1.0, loss_detect_box: 1.0, "
               "loss_classify_ce: 1.0, loss_vqa_ce: 1.0}")
    cfg = load_config(None, tiny + [entry, weights, "data.batch_size=2",
                                    f"train.output_dir={tmp_path / 'run'}",
                                    "train.max_steps=200"])
    trainer = Trainer(cfg, progress=False)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    stats = _tool().time_tasks(trainer, steps=2, warmup=1)
    assert set(stats) == {"detect", "classify", "vqa"}
    for times in stats.values():
        assert set(times) == {"forward", "backward", "optimizer"}
        assert all(t > 0 for t in times.values())
    # the timed steps are real optimizer steps
    assert any(not (p == before[n]).all() for n, p in trainer.model.named_parameters())
