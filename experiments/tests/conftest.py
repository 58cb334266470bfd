"""The fixtures of tests/conftest.py (tiny model, small synthetic dataset, real datasets) for
the experiment scripts' own tests, which are not part of ``make test``:

    .venv/bin/python -m pytest experiments/tests
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_unihema_test_fixtures", Path(__file__).resolve().parents[2] / "tests" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

tiny = _fixtures.tiny
synth_root = _fixtures.synth_root
shared_datasets = _fixtures.shared_datasets
