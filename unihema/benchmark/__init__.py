"""Benchmarks: models loaded from folders, scored on configured data and on suites.

The layer above :mod:`unihema.evaluation` (metrics, the inference loop, suite files, reports)
that may use the training data path (:mod:`unihema.engine.data`), the specialist baselines and
the unified model's checkpoints:

* :mod:`unihema.benchmark.models`: :func:`load_model` (a checkpoint, run or baseline folder);
* :mod:`unihema.benchmark.evaluate`: :func:`evaluate_entries`, :func:`evaluate_baseline`;
* :mod:`unihema.benchmark.suite`: :func:`run_suite` (``unihema eval``).
"""

from unihema.benchmark.evaluate import entry_split, evaluate_baseline, evaluate_entries
from unihema.benchmark.models import LoadedModel, load_model, model_names
from unihema.benchmark.suite import run_suite

__all__ = ["LoadedModel", "entry_split", "evaluate_baseline", "evaluate_entries", "load_model",
           "model_names", "run_suite"]
