"""Training, evaluation and the command line of the specialist baselines (a few steps on tiny
synthetic smears)."""

from __future__ import annotations

import argparse
import itertools
import json

import pytest
import yaml

from unihema.baselines import load_baseline, train_baseline
from unihema.cli.baseline import add_baseline_parser, results_rows
from unihema.baselines.train import class_list
from unihema.benchmark import evaluate_baseline
from unihema.config import load_config
from unihema.engine.data import build_task_splits

SIZE = 64


def entry(root, split, **kw):
    return {"name": "synthetic_smear", "root": str(root), "split": split, **kw}


@pytest.fixture
def config_file(tmp_path, synth_root):
    """A config YAML on the synthetic smears: 64 px, batch 2, warm-up 1."""
    cfg = {"data": {"image_size": SIZE, "batch_size": 2,
                    "train": [entry(synth_root, "train")], "test": [entry(synth_root, "test")]},
           "train": {"output_dir": str(tmp_path / "run"), "warmup_steps": 1, "max_steps": 3}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("kind", ["detector", "segmenter", "classifier"])
def test_train_writes_a_loadable_model_and_a_log(kind, config_file, tmp_path):
    cfg = load_config(config_file)
    out = tmp_path / kind
    summary = train_baseline(cfg, kind=kind, out_dir=out, max_steps=2, progress=False)
    assert summary["steps"] == 2 and summary["stopped_by"] == "steps"
    assert summary["batch_size"] == 2 and summary["image_size"] == SIZE
    assert summary["parameters"] > 1e6
    lines = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2]
    assert all({"loss", "lr", "seconds"} <= set(r) for r in lines)
    assert lines[0]["lr"] == pytest.approx(cfg.train.lr)  # warm-up of one step
    model = load_baseline(out)
    assert model.kind == kind and model.image_size == SIZE
    assert model.checkpoint_meta["train"]["steps"] == 2
    results = evaluate_baseline(model, cfg, cfg.data.test, limit=2, progress=False)
    assert list(results) == [model.task] and "synthetic_smear" in results[model.task]


def test_time_budget_stops_training(config_file, tmp_path):
    """A fake clock advancing 25 s per reading: a 1-minute budget ends after 3 steps."""
    ticks = itertools.count(0.0, 25.0)
    cfg = load_config(config_file)
    summary = train_baseline(cfg, kind="classifier", out_dir=tmp_path / "m", max_minutes=1,
                             max_steps=50, progress=False, clock=lambda: next(ticks))
    assert summary["steps"] == 3 and summary["stopped_by"] == "time"
    assert summary["seconds"] == pytest.approx(75.0)
    log = [json.loads(x) for x in (tmp_path / "m" / "train_log.jsonl").read_text().splitlines()]
    assert [r["seconds"] for r in log] == [25.0, 50.0, 75.0]
    # the cosine follows the clock: the last step ran at a lower rate than the first
    assert log[-1]["lr"] < log[0]["lr"]


def test_trunk_items_do_not_enlarge_a_baselines_batches(config_file, tmp_path, monkeypatch):
    """data.trunk_items belong to the unified model: a baseline draws its own batch size."""
    import unihema.baselines.train as bt

    sizes = []
    real = bt.build_train_loader

    def spy(cfg, splits, **kw):
        loader, sampler = real(cfg, splits, **kw)
        sizes.extend(s.batch_size for s in sampler.sources)
        return loader, sampler

    monkeypatch.setattr(bt, "build_train_loader", spy)
    cfg = load_config(config_file, ["data.trunk_items={classify: 5}"])
    summary = train_baseline(cfg, kind="classifier", out_dir=tmp_path / "t", max_steps=1,
                             progress=False)
    assert sizes and all(s in (None, 2) for s in sizes) and summary["batch_size"] == 2


def test_lr_override_and_bad_arguments(config_file, tmp_path):
    cfg = load_config(config_file)
    summary = train_baseline(cfg, kind="classifier", out_dir=tmp_path / "m", max_steps=1,
                             lr=1e-2, progress=False)
    assert summary["lr"] == 1e-2
    with pytest.raises(ValueError, match="unknown baseline kind"):
        train_baseline(cfg, kind="tracker", out_dir=tmp_path / "x", max_steps=1)
    with pytest.raises(ValueError, match="is a detector, not a classifier"):
        train_baseline(cfg, kind="classifier", arch="fcos_resnet18", out_dir=tmp_path / "x",
                       max_steps=1)


def test_class_lists(synth_root):
    cfg = load_config(None, [f"data.image_size={SIZE}"])
    from unihema.config.schema import DatasetEntry

    plain = DatasetEntry(**entry(synth_root, "train"))
    splits = build_task_splits([plain], cfg, train=True, tasks=["detect", "segment"])
    by_task = {s.task: class_list([s], s.task) for s in splits}
    assert by_task["segment"][0] == "background"
    assert by_task["segment"][1:] == sorted(by_task["segment"][1:])
    assert by_task["detect"] == sorted(by_task["detect"])
    coarse = DatasetEntry(**entry(synth_root, "train",
                                  classes={"detect": ["white blood cell", "red blood cell",
                                                      "platelet", "malaria parasite"]}))
    split = build_task_splits([coarse], cfg, train=True, tasks=["detect"])[0]
    assert class_list([split], "detect") == ["white blood cell", "red blood cell", "platelet",
                                             "malaria parasite"]


def test_class_lists_of_the_real_datasets(shared_datasets):
    from unihema.config.schema import DatasetEntry

    cfg = load_config(None, [])
    bccd = DatasetEntry(name="bccd", root=str(shared_datasets / "BCCD"), split="train")
    wbc = DatasetEntry(name="wbc_seg_zheng", root=str(shared_datasets / "WBC-Seg-Zheng"),
                       split="train")
    splits = {s.task: s for s in build_task_splits([bccd, wbc], cfg, train=True,
                                                   tasks=["detect", "segment", "classify"])}
    assert class_list([splits["detect"]], "detect") == ["platelet", "red blood cell",
                                                         "white blood cell"]
    assert class_list([splits["segment"]], "segment") == ["background", "cytoplasm", "nucleus"]
    assert class_list([splits["classify"]], "classify") == sorted(
        ["neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil"])


def parser():
    p = argparse.ArgumentParser(prog="unihema")
    add_baseline_parser(p.add_subparsers(dest="command"))
    return p


def test_cli_parses():
    args = parser().parse_args(["baseline", "train", "--kind", "detector", "--config", "c.yaml",
                                "--minutes", "2.5", "--steps", "10", "--lr", "1e-3",
                                "data.image_size=128"])
    assert (args.kind, args.arch, args.minutes, args.steps, args.lr) == (
        "detector", None, 2.5, 10, 1e-3)
    assert args.overrides == ["data.image_size=128"] and callable(args.func)
    args = parser().parse_args(["baseline", "eval", "--model", "m", "--config", "c.yaml"])
    assert args.split == "test" and args.out is None
    with pytest.raises(SystemExit):
        parser().parse_args(["baseline", "train", "--kind", "tracker", "--config", "c.yaml"])
    help_text = parser()._subparsers._group_actions[0].choices["baseline"].format_help()
    assert "train" in help_text and "eval" in help_text


def test_cli_train_then_eval(config_file, tmp_path, capsys):
    out = tmp_path / "cls"
    args = parser().parse_args(["baseline", "train", "--kind", "classifier", "--config",
                                str(config_file), "--steps", "2", "--out", str(out),
                                "--no-progress"])
    assert args.func(args) == 0
    assert (out / "baseline.json").is_file()
    res = tmp_path / "res.json"
    args = parser().parse_args(["baseline", "eval", "--model", str(out), "--config",
                                str(config_file), "--out", str(res), "--no-progress",
                                "--limit", "3"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "synthetic_smear" in printed
    record = json.loads(res.read_text())
    assert record["arch"] == "resnet18_classifier" and record["train"]["steps"] == 2
    assert "accuracy" in record["results"]["classify"]["synthetic_smear"]
    args = parser().parse_args(["baseline", "eval", "--model", str(out), "--config",
                                str(config_file), "--split", "val"])
    assert args.func(args) == 2 and "data.val is empty" in capsys.readouterr().err


def test_results_rows():
    rows = results_rows({"detect": {"d": {"AP/x": 0.5, "mAP": 0.25}}})
    assert rows[0] == ["task", "dataset", "metric", "value"]
    assert [r[2] for r in rows[1:]] == ["mAP", "AP/x"]
