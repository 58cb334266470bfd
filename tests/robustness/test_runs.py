"""Bad-input corpus of run records and weights: a resume that cannot go ahead leaves the run
folder as it was and says why; damaged checkpoints are refused, or moved aside on request, never
overwritten; metrics.jsonl keeps one history; every damaged or invalid file of a model folder,
a training checkpoint or a baseline folder is named with the reason and what was expected.

One tiny run (4 steps, checkpoints at 2 and 4) and one tiny baseline are made per module; every
case works on a copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from tests._fixtures import run_config
from unihema.cli import main
from unihema.config.loader import load_config
from unihema.engine import checkpoint as ckpt
from unihema.engine.progress import ABANDONED, rewind
from unihema.engine.trainer import Trainer
from unihema.modeling.model import UniHema
from unihema.modeling.weights import WeightsError
from unihema.utils import sha256_file

pytestmark = pytest.mark.usefixtures("one_thread")


def write_config(path: Path, run: Path, synth_root: Path, max_steps: int = 4) -> Path:
    source = {"name": "synthetic_smear", "root": str(synth_root), "split": "train",
              "tasks": ["classify"]}
    cfg = run_config(run, [source], max_steps=max_steps, warmup_steps=1, keep_last=5)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_root) -> Path:
    """A finished 4-step run: checkpoints/step_00000002, step_00000004, model/, metrics."""
    base = tmp_path_factory.mktemp("trained")
    torch.set_num_threads(1)
    cfg = load_config(str(write_config(base / "run.yaml", base / "run", synth_root)))
    Trainer(cfg, progress=False).train()
    return base / "run"


@pytest.fixture
def run(trained, tmp_path, synth_root):
    """``(config path, run folder)``: a copy of the trained run and a config pointing at it."""
    folder = tmp_path / "run"
    shutil.copytree(trained, folder)
    return write_config(tmp_path / "run.yaml", folder, synth_root), folder


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def records(folder: Path, name: str = "metrics.jsonl") -> list:
    return [json.loads(line) for line in (folder / name).read_text().splitlines() if line]


def train(config: Path, *args: str) -> int:
    return main(["train", "--config", str(config), "--no-progress", *args])


# ----------------------------------------------------------------- incompatible resume
@pytest.mark.parametrize("override, resume, names", [
    ("model.d_model=48", "auto",
     ["model.d_model: 32 in the checkpoint, 48 in this run", "[2, 32] in the file, [2, 48] in "
      "the model", "more"]),
    ("model.fusion.queries=6", "auto",
     ["model.fusion.queries: 4 in the checkpoint, 6 in this run", "in the file"]),
    ("model.tasks=[classify,detect]", "auto",
     ["model.tasks:", "in the file, not in the model"]),
    ("model.d_model=48", "checkpoints/step_00000002",
     ["step_00000002/model.safetensors", "model.d_model: 32 in the checkpoint"]),
], ids=["d_model", "queries", "fewer_heads", "explicit_path"])
def test_incompatible_resume_changes_nothing(run, capsys, override, resume, names):
    config, folder = run
    before = snapshot(folder)
    target = resume if resume == "auto" else str(folder / resume)
    assert train(config, "--resume", target, override) == 3
    err = capsys.readouterr().err
    assert "model.safetensors does not fit this run's model" in err
    assert all(n in err for n in names), err
    assert "Nothing in" in err and "was changed" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1  # one paragraph
    assert snapshot(folder) == before  # config.yaml, checkpoints and metrics byte-identical


# ----------------------------------------------------------------- damaged checkpoints
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated_optimizer": (lambda d: _truncate(d / ckpt.OPTIMIZER), "sha256 differs"),
    "no_marker": (lambda d: (d / ckpt.MARKER).unlink(), "no COMPLETE marker"),
    "altered_weights": (lambda d: _flip_last_byte(d / ckpt.MODEL), "sha256 differs"),
    "missing_rng": (lambda d: (d / "rng_rank0.json").unlink(), "listed in COMPLETE but missing"),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_all_checkpoints_damaged_is_refused(run, capsys, kind):
    config, folder = run
    damage, reason = DAMAGE[kind]
    for d in ckpt.list_checkpoints(folder / "checkpoints"):
        damage(d)
    before = snapshot(folder)
    assert train(config, "--resume", "auto") == 3
    err = capsys.readouterr().err
    assert "all 2 checkpoint(s)" in err and "are damaged" in err and "--fresh" in err
    assert "step_00000002" in err and "step_00000004" in err and reason in err
    assert snapshot(folder) == before


def test_fresh_sets_damaged_aside_and_starts_over(run, capsys):
    config, folder = run
    for d in ckpt.list_checkpoints(folder / "checkpoints"):
        _truncate(d / ckpt.OPTIMIZER)
    damaged = {d.name: snapshot(d) for d in ckpt.list_checkpoints(folder / "checkpoints")}
    old = records(folder)
    assert train(config, "--resume", "auto", "--fresh") == 0
    for name, files in damaged.items():
        aside = folder / "checkpoints" / f"{name}.damaged"
        kept = snapshot(aside)
        assert "sha256 differs" in (aside / "DAMAGED").read_text()
        kept.pop("DAMAGED")
        assert kept == files  # moved, not rewritten
        assert ckpt.verify(folder / "checkpoints" / name) is None  # the new run's own
    steps = [r["step"] for r in records(folder) if "loss" in r]
    assert steps == [1, 2, 3, 4]
    assert records(folder, ABANDONED) == old  # the abandoned history, whole


def test_fresh_needs_resume_auto(run, capsys):
    config, folder = run
    before = snapshot(folder)
    assert train(config, "--fresh") == 2
    err = capsys.readouterr().err
    assert "--fresh" in err and "only applies with --resume auto" in err
    assert snapshot(folder) == before


def test_newest_damaged_is_kept_aside_not_overwritten(run):
    config, folder = run
    newest = folder / "checkpoints" / "step_00000004"
    _truncate(newest / ckpt.OPTIMIZER)
    files = snapshot(newest)
    assert train(config, "--resume", "auto") == 0
    aside = folder / "checkpoints" / "step_00000004.damaged"
    kept = snapshot(aside)
    kept.pop("DAMAGED")
    assert kept == files
    ckpt.verify(newest)  # rewritten by the resumed run from step 2
    resumes = [r for r in records(folder) if "resumed_from" in r]
    assert resumes[-1]["resumed_from"].endswith("step_00000002")


def test_fresh_run_in_a_used_folder_sets_the_old_checkpoints_aside(run):
    """A new run from step 0 where an old one reached step 4 (keep_last 1): the old
    checkpoints are kept as .abandoned, the new run's own survive pruning, and a later
    --resume auto takes the new run's step 2, not the old step 4."""
    config, folder = run
    old = {d.name: snapshot(d) for d in ckpt.list_checkpoints(folder / "checkpoints")}
    assert train(config, "train.max_steps=2", "train.keep_last=1") == 0
    for name, files in old.items():
        aside = folder / "checkpoints" / f"{name}.abandoned"
        kept = snapshot(aside)
        assert "restarted from step 0" in (aside / "ABANDONED").read_text()
        kept.pop("ABANDONED")
        assert kept == files
    assert [d.name for d in ckpt.list_checkpoints(folder / "checkpoints")] == ["step_00000002"]
    assert ckpt.resolve("auto", folder / "checkpoints").name == "step_00000002"


# ----------------------------------------------------------------- one history
def test_metrics_stay_monotonic_after_two_resumes(run):
    """Back to step 2 (abandoning 3-4), on to 6, back to step 4 (abandoning 5-6), on to 6:
    each step is logged once, in order, and the abandoned records are kept aside."""
    config, folder = run
    first = records(folder)
    for step in (2, 4):
        assert train(config, "--resume", str(folder / "checkpoints" / f"step_{step:08d}"),
                     "train.max_steps=6") == 0
    kept = records(folder)
    steps = [r["step"] for r in kept if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6], steps  # every step once, in order
    assert all(a["step"] <= b["step"] for a, b in zip(kept, kept[1:]))
    assert [(r["step"], r["abandoned"]) for r in kept if "resumed_from" in r] == [(2, 3), (4, 3)]
    abandoned = records(folder, ABANDONED)
    assert [r["step"] for r in abandoned if "loss" in r] == [3, 4, 5, 6]  # nothing lost
    assert first[:2] == kept[:2]
    # the checkpoints of the abandoned histories are kept aside, not overwritten
    aside = sorted(p.name for p in (folder / "checkpoints").iterdir() if "." in p.name)
    assert aside == ["step_00000004.abandoned", "step_00000006.abandoned"]


def test_a_line_cut_by_a_kill_is_set_aside(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "loss": 0.9}\n{"step": 3, "lo')
    assert rewind(path, 2) == 1
    assert [r["step"] for r in records(tmp_path)] == [1, 2]
    assert (tmp_path / ABANDONED).read_text() == '{"step": 3, "lo\n'


# ----------------------------------------------------------------- model folders
def _edit_json(name, change):
    def apply(d: Path) -> None:
        meta = json.loads((d / name).read_text())
        change(meta)
        (d / name).write_text(json.dumps(meta))
    return apply


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def _safetensors_with(header: bytes, data: bytes = b"") -> bytes:
    return len(header).to_bytes(8, "little") + header + data


MODEL_CASES = {
    "truncated_weights": (lambda d: _truncate(d / "model.safetensors"),
                          ["model.safetensors", "truncated", "re-copy or re-save"]),
    "pickle_weights": (lambda d: (d / "model.safetensors").write_bytes(pickle.dumps({"w": 1})),
                       ["model.safetensors", "Python pickle", "never unpickles"]),
    "torch_save_weights": (lambda d: torch.save({"w": torch.zeros(2)}, d / "model.safetensors"),
                           ["model.safetensors", "zip archive", "never unpickles"]),
    "empty_weights": (lambda d: (d / "model.safetensors").write_bytes(b""),
                      ["model.safetensors", "empty (0 bytes)"]),
    "tiny_weights": (lambda d: (d / "model.safetensors").write_bytes(b"\x01\x02\x03"),
                     ["model.safetensors", "too short for safetensors"]),
    "stray_bytes": (lambda d: _append(d / "model.safetensors", b"junk"),
                    ["model.safetensors", "4 stray bytes"]),
    "header_not_json": (lambda d: (d / "model.safetensors").write_bytes(
        _safetensors_with(b"not json")), ["model.safetensors", "not a safetensors tensor table"]),
    "header_a_list": (lambda d: (d / "model.safetensors").write_bytes(
        _safetensors_with(b"[1, 2]")), ["model.safetensors", "not an object"]),
    "cut_config": (lambda d: (d / "config.json").write_text((d / "config.json").read_text()[:150]),
                   ["config.json", "not valid JSON", "cut short", '"model"']),
    "empty_config": (lambda d: (d / "config.json").write_text(""),
                     ["config.json", "empty (0 bytes)"]),
    "binary_config": (lambda d: (d / "config.json").write_bytes(b"\xff\xfe{}"),
                      ["config.json", "not UTF-8"]),
    "config_a_list": (lambda d: (d / "config.json").write_text("[1, 2]"),
                      ["config.json", "no 'model' section", "a list"]),
    "unknown_key": (_edit_json("config.json", lambda m: m["model"].update(d_modle=32)),
                    ["config.json", "model.d_modle: unknown key", "did you mean 'd_model'"]),
    "nested_unknown_key": (_edit_json("config.json",
                                      lambda m: m["model"]["backbone"].update(widht=8)),
                           ["config.json", "model.backbone.widht: unknown key",
                            "valid keys of model.backbone"]),
    "mistyped_value": (_edit_json("config.json", lambda m: m["model"].update(d_model="32")),
                       ["config.json", "model.d_model: expected int, got str '32'"]),
    "mistyped_image_size": (_edit_json("config.json", lambda m: m.update(image_size="big")),
                            ["config.json", "image_size: expected a positive integer"]),
    "classes_a_string": (_edit_json("config.json", lambda m: m.update(classes="RBC WBC")),
                         ["config.json", "classes: expected a mapping task -> list"]),
    "t5_config_a_string": (_edit_json("config.json", lambda m: m.update(t5_config="t5-small")),
                           ["config.json", "t5_config: expected a mapping"]),
    "weights_of_another_size": (_edit_json("config.json", lambda m: m["model"].update(d_model=48)),
                                ["model.safetensors", "does not fit the model built from",
                                 "config.json", "[2, 32] in the file, [2, 48] in the model"]),
    "cut_tokenizer_config": (lambda d: (d / "tokenizer_config.json").write_text('{"a": '),
                             ["tokenizer_config.json", "not valid JSON"]),
}


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_broken_model_folder_names_the_file(trained, tmp_path, case):
    folder = tmp_path / "model"
    shutil.copytree(trained / "model", folder)
    damage, names = MODEL_CASES[case]
    damage(folder)
    with pytest.raises(WeightsError) as info:
        UniHema.from_pretrained(folder)
    assert str(folder) in str(info.value)
    assert all(n in str(info.value) for n in names), str(info.value)


@pytest.mark.parametrize("missing, names", [
    ("config.json", "no config.json"), ("model.safetensors", "model.safetensors is missing")])
def test_missing_model_file_is_named(trained, tmp_path, missing, names):
    folder = tmp_path / "model"
    shutil.copytree(trained / "model", folder)
    (folder / missing).unlink()
    with pytest.raises(FileNotFoundError, match=names):
        UniHema.from_pretrained(folder)


def test_cli_reports_broken_weights_without_a_traceback(trained, tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(trained / "model", folder)
    (folder / "model.safetensors").write_bytes(pickle.dumps({"w": 1}))
    image = tmp_path / "field.png"
    Image.new("RGB", (64, 64), (200, 150, 160)).save(image)
    assert main(["ask", "--model", str(folder), str(image), "How many cells?"]) == 2
    err = capsys.readouterr().err
    assert "model.safetensors" in err and "pickle" in err and "Traceback" not in err


# ----------------------------------------------------------------- training checkpoints
def _rehash(d: Path) -> None:
    """Rewrite COMPLETE so the damage passes the sha256 check (what the reader must catch)."""
    marker = json.loads((d / ckpt.MARKER).read_text())
    marker["files"] = {rel: sha256_file(d / rel) for rel in marker["files"]}
    (d / ckpt.MARKER).write_text(json.dumps(marker))


@pytest.mark.parametrize("damage, names", [
    (lambda d: (d / ckpt.STATE).write_text((d / ckpt.STATE).read_text()[:100]),
     ["state.json", "not valid JSON"]),
    (lambda d: (d / ckpt.MODEL).write_bytes(pickle.dumps({"w": 1})),
     ["model.safetensors", "pickle"]),
], ids=["cut_state_json", "pickled_weights"])
def test_broken_checkpoint_file_is_named_on_convert(trained, tmp_path, capsys, damage, names):
    d = tmp_path / "step_00000004"
    shutil.copytree(trained / "checkpoints" / "step_00000004", d)
    damage(d)
    _rehash(d)
    assert main(["convert-checkpoint", str(d), str(tmp_path / "out")]) in (2, 3)
    err = capsys.readouterr().err
    assert str(d) in err and all(n in err for n in names) and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------- baseline folders
@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    from unihema.baselines.models import build_baseline, save_baseline

    return save_baseline(build_baseline("resnet18_classifier", classes=["a", "b"], image_size=64),
                         tmp_path_factory.mktemp("baseline") / "b")


def _no_sha(then=None):
    def apply(d: Path) -> None:
        _edit_json("baseline.json", lambda m: m.pop("weights_sha256"))(d)
        if then:
            then(d)
    return apply


def _new_weights(data: bytes):
    def apply(d: Path) -> None:
        (d / "model.safetensors").unlink()  # a hard link to the shared file: replace, not edit
        (d / "model.safetensors").write_bytes(data)
    return apply


def _cut_weights(d: Path) -> None:
    data = (d / "model.safetensors").read_bytes()
    _new_weights(data[: len(data) // 2])(d)


BASELINE_CASES = {
    "truncated_recorded_sha": (_cut_weights, ["model.safetensors", "sha256 differs"]),
    "truncated": (_no_sha(_cut_weights), ["model.safetensors", "truncated"]),
    "pickle": (_no_sha(_new_weights(pickle.dumps({"w": 1}))),
               ["model.safetensors", "Python pickle", "never unpickles"]),
    "empty": (_no_sha(_new_weights(b"")), ["model.safetensors", "empty (0 bytes)"]),
    "cut_json": (lambda d: (d / "baseline.json").write_text('{"arch": "resnet18_c'),
                 ["baseline.json", "not valid JSON", "cut short", "'arch' and 'kwargs'"]),
    "unknown_kwarg": (_edit_json("baseline.json", lambda m: m["kwargs"].update(widht=3)),
                      ["baseline.json", "kwargs.widht: not an argument of ResNetClassifier"]),
    "mistyped_kwarg": (_edit_json("baseline.json", lambda m: m["kwargs"].update(image_size="big")),
                       ["baseline.json", "kwargs.image_size: expected int, got 'big'"]),
    "classes_a_string": (_edit_json("baseline.json", lambda m: m["kwargs"].update(classes="ab")),
                         ["baseline.json", "kwargs.classes: expected a list of str"]),
    "kwargs_a_list": (_edit_json("baseline.json", lambda m: m.update(kwargs=[1])),
                      ["baseline.json", "'kwargs' (a mapping", "'kwargs': 'list'"]),
    "sha_not_a_string": (_edit_json("baseline.json", lambda m: m.update(weights_sha256=5)),
                         ["baseline.json", "weights_sha256: expected 64 hex digits"]),
    "weights_of_two_classes": (_edit_json("baseline.json", lambda m: m["kwargs"].update(
        classes=["a", "b", "c"])), ["model.safetensors", "does not fit", "baseline.json",
                                    "in the file", "in the model"]),
}


@pytest.mark.parametrize("case", sorted(BASELINE_CASES))
def test_broken_baseline_folder_names_the_file(baseline, tmp_path, case):
    from unihema.baselines.models import load_baseline

    folder = tmp_path / "b"
    folder.mkdir()
    shutil.copy(baseline / "baseline.json", folder)
    os.link(baseline / "model.safetensors", folder / "model.safetensors")  # no 44 MB copy
    damage, names = BASELINE_CASES[case]
    damage(folder)
    with pytest.raises(ValueError) as info:
        load_baseline(folder)
    assert str(folder) in str(info.value)
    assert all(n in str(info.value) for n in names), str(info.value)
