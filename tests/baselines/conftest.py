"""Fixtures of the specialist tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every specialist test runs torch on one thread (tests/conftest.py ``one_thread``)."""
