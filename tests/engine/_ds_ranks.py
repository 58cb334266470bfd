"""Run under torchrun by test_deepspeed.py: train with DeepSpeed, then every rank writes its
own parameters to ``<output_dir>/rank<r>.safetensors`` for the test to compare."""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from unihema.config.loader import load_config
from unihema.engine.trainer import Trainer

if __name__ == "__main__":
    config, ds_config = sys.argv[1], sys.argv[2]
    cfg = load_config(config)
    trainer = Trainer(cfg, progress=False, deepspeed=ds_config)
    init = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    trainer.train()
    params = {k: v.detach().clone().contiguous() for k, v in trainer.model.named_parameters()}
    moved = sum(not torch.equal(init[k], params[k]) for k in params)
    out = Path(cfg.train.output_dir)
    save_file(params, str(out / f"rank{trainer.dist.rank}.safetensors"),
              metadata={"moved": str(moved), "world_size": str(trainer.dist.world_size),
                        "backend": torch.distributed.get_backend(),
                        "zero_stage": str(trainer.engine.zero_optimization_stage())})
