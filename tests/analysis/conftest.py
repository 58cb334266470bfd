"""Fixtures of the analysis tests: a tiny random model that reads fields like the demo model
(lineages detected, white and red cells typed on crops, white cells described), a small
synthetic field with its truth, and a detector that reports the truth boxes a window shows."""

from __future__ import annotations

import pytest
import torch

from unihema.analysis.truth import truth_detector as _truth_detector

FIELD_UM_PER_PX = 0.2
WHITE_TYPES = ["segmented neutrophil", "lymphocyte", "monocyte"]


@pytest.fixture(scope="session")
def tiny_pipe(tmp_path_factory, tiny):
    from unihema.api import UniHemaPipeline
    from unihema.config import load_config
    from unihema.modeling.model import UniHema

    torch.manual_seed(0)
    cfg = load_config(None, tiny + ["model.heads.detect_score_threshold=0"])
    reading = cfg.model.reading
    reading.detect = ["red blood cell", "white blood cell", "platelet"]
    reading.types = {"red blood cell": ["red blood cell", "target cell"],
                     "white blood cell": list(WHITE_TYPES)}
    reading.crop_size = 32
    model = UniHema.from_config(cfg)
    path = tmp_path_factory.mktemp("analysis") / "model"
    model.save_pretrained(path, extra={"image_size": 128})
    return UniHemaPipeline.from_pretrained(path)


@pytest.fixture(scope="session")
def small_field():
    """A 480x360 synthetic field at 0.2 um/px with white cells and parasites."""
    from unihema.synth.layout import SmearSpec
    from unihema.synth.smear import make_field

    spec = SmearSpec(white_per_100_red=6.0, parasitaemia=0.05)
    return make_field(480, 360, um_per_px=FIELD_UM_PER_PX, seed=3, spec=spec)


def truth_detector(field, min_visible: float = 0.3):
    """``(name, window) -> Detections``: the truth boxes of ``field`` clipped to the window,
    for cells showing at least ``min_visible`` of their box there (lineage labels)."""
    return _truth_detector(field.cells, min_visible)


def white_trust(unknown_threshold: float = float("inf"), referral_threshold: float = 0.5,
                temperature: float = 1.0):
    """A trust state over :data:`WHITE_TYPES` scoring unknown cells by maximum softmax
    probability (no fitted tensors), with the given thresholds."""
    from unihema.trust.state import TrustState

    return TrustState(classes=list(WHITE_TYPES), temperature=temperature,
                      conformal={"0.90": 0.9, "0.95": 0.95}, unknown_method="msp",
                      unknown_threshold=unknown_threshold,
                      referral_threshold=referral_threshold,
                      fitted_on={"dataset": "synthetic_smear", "split": "val", "items": 30})


@pytest.fixture
def trusted_pipe(tiny_pipe):
    """``tiny_pipe`` with :func:`white_trust` (put back afterwards)."""
    tiny_pipe.trust = white_trust()
    try:
        yield tiny_pipe
    finally:
        tiny_pipe.trust = None
