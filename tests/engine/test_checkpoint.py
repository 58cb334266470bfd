"""Checkpoint format, verification, pruning, conversion and run logging."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from unihema.cli import main
from unihema.config.loader import load_config
from unihema.engine import checkpoint as ckpt
from unihema.engine.progress import ProgressLogger
from unihema.engine.trainer import Trainer
from unihema.modeling.model import UniHema


def _fake_checkpoint(root: Path, step: int, keep_last: int = 10) -> Path:
    tmp = ckpt.prepare(root, step)
    ckpt.write_rank_files(tmp, 0)
    ckpt.write_main_files(tmp, step=step, state={"note": "x"})
    return ckpt.finalize(tmp, root, step, keep_last)


def test_optimizer_state_round_trips_through_tensors_and_json():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.98))
    model(torch.randn(2, 3)).sum().backward()
    opt.step()
    js, tensors = ckpt.flatten_optimizer(opt.state_dict())
    assert all(k.startswith("state.") for k in tensors) and "state.0.exp_avg" in tensors
    back = ckpt.unflatten_optimizer(json.loads(json.dumps(js)), tensors)
    fresh = torch.optim.AdamW(model.parameters(), lr=1.0)
    fresh.load_state_dict(back)
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"][0]["lr"] == b["param_groups"][0]["lr"] == 1e-2
    for i in a["state"]:
        for name, v in a["state"][i].items():
            assert torch.equal(v, b["state"][i][name])


def test_rng_states_round_trip(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    ckpt.write_rank_files(tmp_path, 0)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt.set_rng_state(*ckpt.read_rank(tmp_path, 0))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    with pytest.raises(ckpt.CheckpointError, match="no RNG state for rank 1"):
        ckpt.read_rank(tmp_path, 1)


def test_damage_of_every_kind_is_detected(tmp_path, caplog):
    root = tmp_path / "checkpoints"
    first, second = _fake_checkpoint(root, 1), _fake_checkpoint(root, 2)
    assert ckpt.find_latest(root) == second
    rng = second / "rng_rank0.safetensors"
    data = bytearray(rng.read_bytes())
    data[-1] ^= 0xFF  # same size, altered byte
    rng.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert ckpt.find_latest(root) == first
    assert "sha256 differs" in caplog.text
    (first / ckpt.MARKER).unlink()  # an interrupted write: renamed, no marker yet
    with pytest.raises(ckpt.CheckpointError, match="no COMPLETE marker"):
        ckpt.verify(first)
    assert ckpt.find_latest(root) is None
    # every checkpoint damaged: an automatic resume refuses, unless asked to start fresh
    with pytest.raises(ckpt.CheckpointError, match="all 2 checkpoint.*damaged.*--fresh"):
        ckpt.resolve("auto", root)
    assert ckpt.resolve("auto", root, fresh=True) is None
    assert ckpt.resolve("auto", tmp_path / "no_checkpoints_yet") is None
    with pytest.raises(ckpt.CheckpointError, match="no complete checkpoint"):
        ckpt.resolve(str(root), root)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        ckpt.resolve(str(tmp_path / "nowhere"), root)


def test_only_the_last_k_are_kept_and_leftovers_removed(tmp_path):
    root = tmp_path / "checkpoints"
    leftover = ckpt.prepare(root, 99)
    for step in range(1, 6):
        _fake_checkpoint(root, step, keep_last=2)
    assert [d.name for d in ckpt.list_checkpoints(root)] == ["step_00000004", "step_00000005"]
    assert not leftover.exists()
    marker = json.loads((root / "step_00000005" / ckpt.MARKER).read_text())
    assert marker["step"] == 5 and set(marker["files"]) == {
        "state.json", "rng_rank0.json", "rng_rank0.safetensors"}


def test_convert_checkpoint_cli_and_nontty_log_lines(run_config, tmp_path, caplog):
    cfg = load_config(str(run_config("conv", tasks=["classify"], max_steps=3, save_every=3,
                                     log_every=2)))
    with caplog.at_level(logging.INFO, logger="unihema.train"):
        Trainer(cfg, progress=True).train()  # pytest's stdout is no terminal: log lines
    lines = [r.getMessage() for r in caplog.records if r.name == "unihema.train"]
    assert len(lines) == 2 and lines[0].startswith("step 2/3") and "ETA" in lines[0]
    assert "samples/s" in lines[0] and "classify=" in lines[0]
    run = Path(cfg.train.output_dir)
    out = tmp_path / "converted"
    assert main(["convert-checkpoint", str(run), str(out)]) == 0
    model = UniHema.from_pretrained(out)
    assert model.checkpoint_meta["converted_from"].endswith("step_00000003")
    # what the training images looked like, for inference's unlike_training warning
    stats = model.checkpoint_meta["image_stats"]["cell"]
    assert stats["n"] > 0 and len(stats["mean"]) == len(stats["std"]) == 4
    a, b = load_file(str(out / "model.safetensors")), load_file(str(run / "model" /
                                                                    "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the record of the training images travels with the weights
    assert (out / "train_images.json").read_bytes() == (run / "train_images.json").read_bytes()
    assert main(["convert-checkpoint", str(tmp_path / "empty"), str(out)]) == 2


def test_progress_bar_on_a_terminal(tmp_path, capsys):
    rep = ProgressLogger(tmp_path, total=4, log_every=2, tty=True)
    for step in range(1, 5):
        rep.step(step, "detect", {"loss_detect_box": 0.5}, lr=1e-3, samples=4)
    rep.close()
    err_out = capsys.readouterr()
    assert "img/s" in err_out.out + err_out.err
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    assert records[-1]["running"] == {"detect": 0.5} and records[-1]["samples_per_s"] > 0
