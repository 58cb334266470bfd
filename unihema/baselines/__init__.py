"""Single-task specialist baselines, trained and scored like the unified model.

    unihema baseline train --kind detector --config configs/compare/unified.yaml --minutes 15
    unihema baseline eval --model runs/baselines/fcos_resnet18 --config CFG --split test

See ``docs/baselines.md``; :mod:`unihema.baselines.models` (the specialists and their
checkpoints) and :mod:`unihema.baselines.train` (training and evaluation).
"""

from unihema.baselines.models import BASELINES, load_baseline, save_baseline
from unihema.baselines.train import evaluate_baseline, train_baseline

__all__ = ["BASELINES", "evaluate_baseline", "load_baseline", "save_baseline", "train_baseline"]
