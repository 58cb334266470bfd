"""Model loading and ``run_suite`` end to end on tiny random models (``unihema eval``)."""

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

from unihema.benchmark import load_model, model_names, run_suite
from unihema.cli.eval import add_eval_parser
from unihema.config import load_config
from unihema.modeling.model import UniHema


def write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def entry(task, root, **kw):
    return {"dataset": "synthetic_smear", "root": str(root), "split": "test", "task": task, **kw}


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
    # saved without an image size: its preprocessor_config.json holds the default, 256
    assert b.name == "modelB" and b.tasks == ["detect", "classify"] and b.image_size == 256
    with pytest.raises(FileNotFoundError, match="not a model folder"):
        load_model(tmp_path)
    # what the text tasks read is the cascade's, not a switch on the model
    assert a.cascade.source == "model" and not hasattr(a.model, "reading_source")
    assert load_model(run_a, reading="truth").cascade.source == "truth"
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


# ----------------------------------------------------------------------------- trust entries
TRAINED = ["segmented neutrophil", "band neutrophil", "lymphocyte", "monocyte", "basophil"]
WHITE = TRAINED + ["eosinophil", "myeloblast", "promyelocyte", "atypical lymphocyte"]


def test_open_set_and_selective_entries_end_to_end(models, synth_root, tmp_path):
    """Held-out eosinophils among the trained white cells, with the trust state of the model
    folder: metrics of every score, the ROC, risk-coverage and coverage-vs-target plots."""
    import shutil

    from unihema.trust.state import TrustState

    run = tmp_path / "runA"
    shutil.copytree(models[0], run)
    TrustState(classes=list(TRAINED), temperature=1.0, conformal={"0.90": 0.9, "0.95": 0.97},
               unknown_method="msp", unknown_threshold=-0.5, referral_threshold=0.6,
               fitted_on={"split": "val"}).save(run / "model")
    suite = write(tmp_path / "suite.yaml", {"name": "trust", "batch_size": 2, "entries": [
        # every white type listed: red cells left out, the held-out types kept
        entry("classify", synth_root, candidates=WHITE, evaluator="open_set",
              options={"known": TRAINED}),
        entry("classify", synth_root, candidates=TRAINED, evaluator="selective",
              options={"targets": [0.5, 0.9]}),
    ]})
    res = run_suite(suite, [run], tmp_path / "report", progress=False)
    open_set = res["classify"]["synthetic_smear[open_set]"]
    assert (open_set["n_known"], open_set["n_unknown"]) == (3, 2)  # 2 eosinophils held out
    for score in ("msp", "energy", "trust"):
        assert 0.0 <= open_set[f"auroc/{score}"] <= 1.0 and f"aupr/{score}" in open_set
    assert open_set["auroc"] == open_set["auroc/trust"]
    selective = res["classify"]["synthetic_smear[selective]"]
    assert selective["n"] == 3 and {"coverage@acc50", "coverage@acc90", "referral_coverage",
                                    "set_coverage@0.90", "set_size@0.95"} <= set(selective)
    plots = res["meta"]["plots"]["runA"]["classify"]
    assert set(plots["synthetic_smear[open_set]"]) == {"roc"}
    assert set(plots["synthetic_smear[selective]"]) == {"risk_coverage", "coverage_target"}
    md = (tmp_path / "report" / "results.md").read_text()
    assert "## classify (open set) — synthetic_smear/test" in md
    assert "[ROC (known vs unseen types)](" in md and "[coverage at a target accuracy](" in md
    for rel in [p for d in plots.values() for p in d.values()]:
        with Image.open(tmp_path / "report" / rel) as im:
            im.verify()
