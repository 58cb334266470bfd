"""train.precision: what each setting resolves to on a CPU, and bf16 autocast on one."""

from __future__ import annotations

import pytest
import torch

from unihema.engine import distributed
from unihema.engine.distributed import resolve_precision

CPU = torch.device("cpu")


@pytest.mark.parametrize("native", [True, False])
def test_auto_on_a_cpu_is_fp32_unless_cpu_bf16_and_native(monkeypatch, native):
    monkeypatch.setattr(distributed, "cpu_has_bf16", lambda: native)
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision("auto", CPU, cpu_bf16=True) == ("bf16" if native else "fp32")
    assert resolve_precision("fp32", CPU, cpu_bf16=True) == "fp32"


def test_deepspeed_on_a_cpu_stays_fp32(monkeypatch):
    monkeypatch.setattr(distributed, "cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", CPU, cpu_bf16=True, deepspeed=True) == "fp32"
    with pytest.raises(ValueError, match="DeepSpeed runs on a CPU train in fp32"):
        resolve_precision("bf16", CPU, deepspeed=True)


def test_explicit_bf16_on_a_cpu_needs_native_bf16(monkeypatch):
    monkeypatch.setattr(distributed, "cpu_has_bf16", lambda: True)
    assert resolve_precision("bf16", CPU) == "bf16"
    monkeypatch.setattr(distributed, "cpu_has_bf16", lambda: False)
    with pytest.raises(ValueError, match="no native bf16"):
        resolve_precision("bf16", CPU)
    with pytest.raises(ValueError, match="fp16 needs a GPU"):
        resolve_precision("fp16", CPU)


def test_cpu_probe_answers_a_bool():
    assert isinstance(distributed.cpu_has_bf16(), bool)


@pytest.mark.skipif(not distributed.cpu_has_bf16(), reason="this CPU has no native bf16")
def test_cpu_bf16_run_trains_in_bf16_with_fp32_weights(run_config):
    """On a CPU with native bf16, cpu_bf16 trains under bf16 autocast: finite losses, the
    weights stay fp32 (only the arithmetic is bf16)."""
    from unihema.config.loader import load_config
    from unihema.engine.trainer import Trainer

    cfg = load_config(str(run_config("bf16", cpu_bf16=True, max_steps=3)))
    trainer = Trainer(cfg, progress=False)
    assert trainer.precision == "bf16"
    trainer.train(save=False)
    assert trainer.step == 3
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_the_deepspeed_argument_reaches_the_precision_rule(run_config, monkeypatch):
    """``Trainer(cfg, deepspeed=...)`` (the CLI's ``--deepspeed``) counts as a DeepSpeed run
    for precision too, not only ``train.deepspeed`` of the config."""
    from unihema.config.loader import load_config
    from unihema.engine.trainer import Trainer

    monkeypatch.setattr(distributed, "cpu_has_bf16", lambda: True)
    cfg = load_config(str(run_config("ds_bf16", precision="bf16", max_steps=2)))
    assert not cfg.train.deepspeed
    with pytest.raises(ValueError, match="DeepSpeed runs on a CPU train in fp32"):
        Trainer(cfg, progress=False, deepspeed="configs/deepspeed/zero2.json")
