"""Suite files, model loading and ``run_suite`` end to end on tiny random models."""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from unihema.config import load_config
from unihema.config.loader import ConfigError
from unihema.evaluation.suite import (
    SuiteEntry,
    add_eval_parser,
    entry_keys,
    load_model,
    load_suite,
    model_names,
    run_suite,
    subset_indices,
)
from unihema.modeling.model import UniHema

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def entry(task, root, **kw):
    return {"dataset": "synthetic_smear", "root": str(root), "split": "test", "task": task, **kw}


# ----------------------------------------------------------------------------- suite files
def test_shipped_suites_are_valid():
    from unihema.synth import WHITE_TYPES

    demo = load_suite(REPO / "configs/eval/demo.yaml")
    assert demo.name == "demo"
    assert {e.task for e in demo.entries} == {"detect", "classify", "segment", "morphology",
                                              "vqa", "mlm"}
    assert {e.root for e in demo.entries} == {"runs/demo/data"}
    classify = [e for e in demo.entries if e.task == "classify"][0]
    assert classify.options["restrict_to"] == list(WHITE_TYPES)
    assert all(e.shuffled for e in demo.entries if e.task in ("vqa", "mlm"))
    real = load_suite(REPO / "configs/eval/real.yaml")
    assert [(e.dataset, e.task) for e in real.entries] == [
        ("bccd", "detect"), ("wbc_seg_zheng", "segment"), ("wbc_seg_zheng", "classify"),
        ("chula_rbc12", "detect"), ("chula_rbc12", "classify"),
        *[(d, t) for d in ("bccd", "wbc_seg_zheng", "chula_rbc12") for t in ("vqa", "mlm")]]
    assert all(e.derive_text and e.limit == 60 for e in real.entries if e.task in ("vqa", "mlm"))
    cross = load_suite(REPO / "configs/eval/cross_zheng.yaml")
    assert sorted({(e.split, e.where) for e in cross.entries}) == [
        (s, (("subset", f"Dataset {d}"),)) for s in ("all", "test") for d in (1, 2)]


@pytest.mark.parametrize("data, message", [
    ({"nmae": "x", "entries": [entry("detect", ".")]}, r"unknown key 'nmae' \(did you mean 'name'"),
    ({"entries": [entry("detect", ".", shufled=True)]}, r"entries\[0\]: unknown key 'shufled'"),
    ({"entries": [{"dataset": "synthetic_smear", "root": "."}]}, "'task' is required"),
    ({"entries": [entry("detection", ".")]}, "unknown task 'detection'"),
    ({"entries": [entry("detect", ".", shuffled=True)]}, "'shuffled' applies to vqa and mlm"),
    ({"entries": [entry("classify", ".", options={"restrict_to": "monocyte"})]},
     "bad options for the classify evaluator"),
    ({"entries": [entry("detect", ".", options={"max_detections": 5})]}, "max_detections"),
    ({"entries": []}, "'entries' must be a non-empty list"),
    ({"limit": 0, "entries": [entry("detect", ".")]}, "limit: expected an integer >= 1"),
    ({"entries": [entry("vqa", ".", classes=["a"])]}, "'classes' must map a task"),
    ({"entries": [entry("segment", ".", candidates=["nucleus"])]},
     "'candidates' applies to classify and detect"),
    ({"entries": [entry("classify", ".", candidates="monocyte")]},
     "'candidates' must be a list"),
    ({"entries": [entry("classify", ".", candidates=["a", "a"])]}, "lists a class twice"),
    ({"entries": [entry("vqa", ".", derive_text="yes")]}, "'derive_text' must be true or false"),
    ({"entries": [entry("classify", ".", where=["Dataset 1"])]}, "'where' must map metadata"),
])
def test_suite_validation_errors(tmp_path, data, message):
    path = write(tmp_path / "bad.yaml", data)
    with pytest.raises(ConfigError, match=message) as info:
        load_suite(path)
    assert str(path) in str(info.value)


def test_suite_defaults_and_all_problems_at_once(tmp_path):
    s = load_suite(write(tmp_path / "mine.yaml", {"entries": [entry("vqa", ".", shuffled=True)]}))
    assert s.name == "mine" and s.batch_size == 16 and s.limit is None and s.image_size is None
    assert s.entries[0] == SuiteEntry(dataset="synthetic_smear", root=".", task="vqa",
                                      shuffled=True)
    bad = write(tmp_path / "bad.yaml", {"colour": 1, "entries": [entry("x", "."), 3]})
    with pytest.raises(ConfigError, match="3 problem") as info:
        load_suite(bad)
    for part in ("colour", "entries[0]", "entries[1]"):
        assert part in str(info.value)


def test_entry_keys_and_subsets():
    e = [SuiteEntry("a", ".", "detect"), SuiteEntry("a", ".", "detect", split="val"),
         SuiteEntry("a", ".", "classify"), SuiteEntry("a", ".", "detect", split="val")]
    assert entry_keys(e) == ["a/test", "a/val", "a", "a/val#2"]
    one, two = (SuiteEntry("z", ".", "classify", where=(("subset", f"Dataset {i}"),))
                for i in (1, 2))
    assert entry_keys([one, two]) == ["z[subset=Dataset 1]", "z[subset=Dataset 2]"]
    assert two.label == "z/test[subset=Dataset 2]:classify"
    assert subset_indices(10, None) is None and subset_indices(3, 5) is None
    assert subset_indices(10, 3) == [0, 4, 9]  # evenly spread, like the runner


def test_model_names_dedupe(tmp_path):
    # a checkpoint folder called "model" is named after its run folder
    assert model_names([tmp_path / "a" / "model", tmp_path / "b" / "model"]) == ["a", "b"]
    assert model_names([tmp_path / "a" / "model", tmp_path / "c" / "a"]) == [
        f"{tmp_path.name}/a", "c/a"]
    parent = tmp_path.name
    assert model_names([tmp_path / "x", tmp_path / "x", tmp_path / "meta"]) == [
        f"{parent}/x", f"{parent}/x#2", "meta_model"]


# ----------------------------------------------------------------------------- models
@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny):
    """A run folder ``runA`` (all tasks, image size 128 in the checkpoint) and a checkpoint
    folder ``modelB`` (detect and classify only, no image size)."""
    root = tmp_path_factory.mktemp("suite_models")
    torch.manual_seed(0)
    a = UniHema.from_config(load_config(None, tiny))
    a.save_pretrained(root / "runA" / "model", extra={"image_size": 128})
    torch.manual_seed(1)
    b = UniHema.from_config(load_config(None, tiny + ["model.tasks=[detect,classify]"]))
    b.save_pretrained(root / "modelB")
    return root / "runA", root / "modelB"


def test_load_model_layouts(models, tmp_path):
    run_a, ckpt_b = models
    a = load_model(run_a)
    assert (a.name, a.kind, a.image_size) == ("runA", "unihema", 128)
    assert len(a.tasks) == 6
    b = load_model(ckpt_b)
    assert b.name == "modelB" and b.tasks == ["detect", "classify"] and b.image_size is None
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        load_model(tmp_path)
    assert a.model.reading_source == "model"
    assert load_model(run_a, reading="truth").model.reading_source == "truth"
    with pytest.raises(ValueError, match="'model' or 'truth'"):
        load_model(run_a, reading="oracle")


class FakeBaseline:
    """A specialist baseline as the suite expects it: ``.tasks``, ``.image_size``, ``.predict``."""

    tasks = ["classify"]
    image_size = 96

    def predict(self, batch):
        return [{"probs": torch.full((len(c),), 1.0 / len(c))} for c in batch["classes"]]


@pytest.fixture
def fake_baselines(monkeypatch):
    module = types.ModuleType("unihema.baselines")
    loaded = []
    module.load_baseline = lambda path: loaded.append(Path(path)) or FakeBaseline()
    monkeypatch.setitem(sys.modules, "unihema.baselines", module)
    return loaded


def test_baseline_folder_scored_through_the_same_path(fake_baselines, synth_root, tmp_path,
                                                      monkeypatch):
    base = tmp_path / "cnn"
    base.mkdir()
    (base / "baseline.json").write_text("{}")
    m = load_model(base)
    assert (m.kind, m.tasks, m.image_size) == ("baseline", ["classify"], 96)
    assert fake_baselines == [base]
    suite = write(tmp_path / "s.yaml", {"name": "b", "entries": [
        entry("classify", synth_root), entry("vqa", synth_root),
        entry("classify", synth_root, options={"restrict_to": ["no such cell"]})]})
    monkeypatch.chdir(tmp_path)  # the default out folder is relative: runs/eval/<name>
    res = run_suite(suite, [base], progress=False, limit=4, plots=False)
    assert (tmp_path / "runs/eval/b/results.json").is_file()
    assert res["classify"]["synthetic_smear/test"]["accuracy"] <= 1.0
    assert "vqa" not in res and res["meta"]["skipped"][0]["task"] == "vqa"
    assert res["meta"]["models"]["cnn"]["kind"] == "baseline"
    # an entry restricted to a class that never occurs: nothing scored, no metric
    assert res["classify"]["synthetic_smear/test#2"] == {}
    assert [e["items"] for e in res["meta"]["entries"]] == [4, None, 0]
    md = (tmp_path / "runs/eval/b/results.md").read_text()
    assert "classify — synthetic_smear/test (0 items)" in md and "(no metrics)" in md


class UnknownClassError(ValueError):
    """As unihema.baselines.models raises it (the suite recognises it by name: this test
    replaces the unihema.baselines package)."""


class TwoClassBaseline(FakeBaseline):
    """A specialist that knows two white-cell types and refuses any other class name."""

    known = ("lymphocyte", "monocyte")

    def predict(self, batch):
        for classes in batch["classes"]:
            if list(classes) != list(self.known):
                raise UnknownClassError(f"unknown classes {classes}")
        return super().predict(batch)


def test_candidates_score_a_specialist_on_the_classes_it_knows(monkeypatch, synth_root,
                                                                tmp_path):
    module = types.ModuleType("unihema.baselines")
    module.load_baseline = lambda path: TwoClassBaseline()
    monkeypatch.setitem(sys.modules, "unihema.baselines", module)
    base = tmp_path / "cnn"
    base.mkdir()
    (base / "baseline.json").write_text("{}")
    suite = write(tmp_path / "s.yaml", {"name": "c", "entries": [
        entry("classify", synth_root, candidates=list(TwoClassBaseline.known))]})
    res = run_suite(suite, [base], tmp_path / "out", progress=False, plots=False)
    (meta,) = res["meta"]["entries"]
    assert meta["candidates"] == ["lymphocyte", "monocyte"]
    n = sum(s.label in TwoClassBaseline.known for s in load_dataset_split(synth_root))
    assert meta["items"] == n > 0
    assert 0.0 <= res["classify"]["synthetic_smear"]["accuracy"] <= 1.0
    # without candidates the same specialist meets the dataset's larger label set and refuses:
    # that entry is skipped with the reason, the others are scored
    plain = write(tmp_path / "p.yaml", {"name": "p", "entries": [
        entry("classify", synth_root),
        entry("classify", synth_root, candidates=list(TwoClassBaseline.known))]})
    res = run_suite(plain, [base], tmp_path / "out2", progress=False, plots=False)
    (skip,) = res["meta"]["skipped"]
    assert skip["dataset"] == "synthetic_smear/test" and "unknown classes" in skip["reason"]
    assert "candidates" in skip["reason"]
    assert res["meta"]["entries"][0]["items"] is None and res["meta"]["entries"][1]["items"] == n


def load_dataset_split(root):
    from unihema.data.catalog import load_dataset

    return [s for s in load_dataset("synthetic_smear", root, "test") if s.label]


# ----------------------------------------------------------------------------- run_suite
@pytest.fixture(scope="module")
def two_model_run(models, synth_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("suite_out")
    suite = write(out / "suite.yaml", {"name": "t", "batch_size": 2, "limit": 3, "entries": [
        entry("detect", synth_root, options={"count_threshold": 0.3}),
        entry("classify", synth_root),
        entry("segment", synth_root),
        entry("vqa", synth_root, shuffled=True, limit=2),
    ]})
    res = run_suite(suite, list(models), out / "report", progress=False, gallery=2)
    return res, out / "report"


def test_results_json_structure(two_model_run):
    res, out = two_model_run
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(res))
    assert list(res) == ["meta", "runA", "modelB"]
    assert set(res["runA"]) == {"detect", "classify", "segment", "vqa"}
    assert set(res["modelB"]) == {"detect", "classify"}
    vqa = res["runA"]["vqa"]["synthetic_smear"]
    for key in ("exact_match", "exact_match_shuffled", "grounding_gap", "bleu1", "bleu4"):
        assert key in vqa, key
    assert vqa["grounding_gap"] == pytest.approx(vqa["exact_match"] - vqa["exact_match_shuffled"])
    for key in ("aurc", "acc@cov90", "acc@cov80", "macro_f1"):
        assert key in res["modelB"]["classify"]["synthetic_smear"], key
    meta = res["meta"]
    assert meta["suite"] == "t" and meta["limit"] == 3 and meta["unihema_version"]
    assert [e["items"] for e in meta["entries"]] == [3, 3, 3, 2]
    assert meta["models"]["runA"]["image_size"] == 128
    assert meta["models"]["modelB"]["image_size"] == 256
    assert {(s["model"], s["task"]) for s in meta["skipped"]} == {
        ("modelB", "segment"), ("modelB", "vqa")}
    assert set(meta["seconds"]["models"]) == {"runA", "modelB"}


def test_results_md_has_one_column_per_model(two_model_run):
    _, out = two_model_run
    md = (out / "results.md").read_text()
    for task in ("detect", "classify", "segment", "vqa"):
        assert f"## {task} — synthetic_smear/test" in md
    assert md.count("| metric | runA | modelB |") == 4
    segment = md.split("## segment")[1].split("##")[0]
    assert "| mean_dice_fg |" in segment and "| — |" in segment
    lines = [ln for ln in md.split("## classify")[1].splitlines() if ln.startswith("| ")]
    assert lines[1].startswith("| macro_f1 |")  # headline first, per-class rows later
    assert "## Skipped" in md


def test_plots_exist_are_valid_and_linked(two_model_run):
    res, out = two_model_run
    files = res["meta"]["plots"]
    assert set(files["runA"]["detect"]["synthetic_smear"]) >= {"gallery"}
    assert set(files["runA"]["classify"]["synthetic_smear"]) == {
        "confusion", "reliability", "risk_coverage", "gallery"}
    assert set(files["runA"]["segment"]["synthetic_smear"]) == {"confusion", "gallery"}
    assert set(files["runA"]["vqa"]["synthetic_smear"]) == {"gallery"}
    assert "segment" not in files["modelB"]
    md = (out / "results.md").read_text()
    paths = [p for m in files.values() for t in m.values() for d in t.values()
             for p in d.values()]
    assert len(paths) >= 10
    for rel in paths:
        with Image.open(out / rel) as im:
            im.verify()
        assert f"]({rel})" in md
    assert not list(out.rglob("*.tmp"))


def test_cli_parser_single_model(models, synth_root, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="unihema")
    add_eval_parser(parser.add_subparsers(dest="command"))
    suite = write(tmp_path / "one.yaml", {"name": "one", "entries": [
        entry("classify", synth_root), entry("segment", synth_root)]})
    args = parser.parse_args(["eval", "--suite", str(suite), "--model", str(models[1]),
                              "--out", str(tmp_path / "o"), "--limit", "2", "--no-plots",
                              "--no-progress"])
    assert args.func(args) == 0
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert list(res) == ["meta", "classify"]  # one model: no model level
    assert res["meta"]["skipped"][0]["task"] == "segment"
    assert not (tmp_path / "o" / "plots").exists()
    printed = capsys.readouterr().out
    assert "classify — synthetic_smear/test" in printed and "macro_f1" in printed
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--help"])
    helptext = capsys.readouterr().out
    assert "unihema eval --suite configs/eval/demo.yaml --model runs/demo" in helptext


def test_unsupported_model_and_missing_root_fail_loudly(models, synth_root, tmp_path):
    only_vqa = write(tmp_path / "v.yaml", {"entries": [entry("vqa", synth_root)]})
    with pytest.raises(ValueError, match="modelB.*nothing to evaluate"):
        run_suite(only_vqa, [models[1]], tmp_path / "o", progress=False)
    missing = write(tmp_path / "m.yaml", {"entries": [entry("detect", tmp_path / "nowhere")]})
    with pytest.raises(FileNotFoundError, match=r"entries\[0\].*does not exist"):
        run_suite(missing, [models[1]], tmp_path / "o", progress=False)
