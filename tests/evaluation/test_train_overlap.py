"""A run records its training images; ``unihema eval`` counts evaluated copies of them."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import yaml

from tests.data.test_duplicates import leaky  # noqa: F401 - the fixture
from tests._fixtures import TINY, run_config
from unihema.config.loader import load_config
from unihema.data.duplicates import TRAIN_IMAGES, TrainImages
from unihema.engine import checkpoint as ckpt
from unihema.engine.trainer import Trainer
from unihema.benchmark import run_suite
from unihema.modeling.model import UniHema
from unihema.pipeline.processing import PROCESSOR_NAME, UniHemaProcessor


def test_eval_counts_training_images_among_evaluated_ones(leaky, tmp_path, caplog,  # noqa: F811
                                                          one_thread):
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(run_config(
        tmp_path / "run", [{"name": "generic", "root": str(leaky), "split": "train"}],
        model=dict(TINY, tasks=["classify"]), image_size=64, max_steps=2, warmup_steps=1),
        sort_keys=False))
    run = Path(load_config(str(cfg_path)).train.output_dir)
    Trainer(load_config(str(cfg_path)), progress=False).train()

    record = TrainImages.read(run / TRAIN_IMAGES)
    assert len(record.sha256) == 4 and record.sources == ["generic/train"]
    step = ckpt.find_latest(run / "checkpoints")
    assert TRAIN_IMAGES in json.loads((step / ckpt.MARKER).read_text())["files"]
    assert (run / "model" / TRAIN_IMAGES).read_bytes() == (run / TRAIN_IMAGES).read_bytes()
    # the trainer's model carries the preprocessing it was trained with
    assert UniHemaProcessor.from_pretrained(run / "model").config.image_size == 64
    assert (run / "model" / PROCESSOR_NAME).is_file()

    untracked = tmp_path / "untracked"  # a model saved without the record: overlap unknown
    UniHema.from_pretrained(run / "model").save_pretrained(untracked)
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"entries": [
        {"dataset": "generic", "root": str(leaky), "split": s, "task": "classify"}
        for s in ("val", "test")]}))
    with caplog.at_level(logging.WARNING, logger="unihema.evaluation.suite"):
        results = run_suite(suite, [run, untracked], tmp_path / "eval", progress=False,
                            plots=False)
    val, test = results["meta"]["entries"]
    # val: a_copy.png is a byte copy of a training image, e.png is new
    assert val["train_overlap"] == {"run": {"items": 2, "exact": 1, "near": 0},
                                    "untracked": "unknown"}
    # test: b_small.jpg is a cropped, resized, re-encoded training image, d.png is new
    assert test["train_overlap"]["run"] == {"items": 2, "exact": 0, "near": 1}
    warned = [r.getMessage() for r in caplog.records]
    assert any("run: 1 of 2 items of generic/test:classify show training images of the "
               "model (0 exact, 1 near" in w for w in warned)
    assert any("untracked: no train_images.json" in w for w in warned)
    md = (tmp_path / "eval" / "results.md").read_text()
    assert "| train-image copies | 1 of 2 (1 exact, 0 near) | unknown |" in md
    assert "| train-image copies | 1 of 2 (0 exact, 1 near) | unknown |" in md
