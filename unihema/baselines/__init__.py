"""Single-task specialist baselines, trained and scored like the unified model.

    unihema baseline train --kind detector --config configs/compare/unified.yaml --minutes 15
    unihema baseline eval --model runs/baselines/fcos_resnet18 --config CFG --split test

See ``docs/baselines.md``; :mod:`unihema.baselines.models` (the specialists and their
checkpoints) and :mod:`unihema.baselines.train` (training); scoring is
:func:`unihema.benchmark.evaluate_baseline`.
"""

from unihema.baselines.models import BASELINES, load_baseline, save_baseline
from unihema.baselines.train import train_baseline

__all__ = ["BASELINES", "load_baseline", "save_baseline", "train_baseline"]
