"""Abnormal white-cell morphology: each variant changes what it says, where it says."""

from __future__ import annotations

import numpy as np
import pytest

from unihema.synth.cells import CYTOPLASM, NUCLEUS, draw_white_cell, sample_white_attributes
from unihema.synth.variants import VARIANTS, apply_variant


def _cell(cell_type: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    attrs = sample_white_attributes(rng, cell_type)
    attrs["cell_size"] = "big"
    return draw_white_cell(rng, cell_type, attrs, 30.0, 30.0)


@pytest.mark.parametrize("variant, cell_type", [
    ("hypergranular", "promyelocyte"), ("auer bundle", "promyelocyte"),
    ("auer rod", "myeloblast"), ("cup nucleus", "myeloblast"),
    ("abnormal granules", "eosinophil"), ("pseudo-pelger", "segmented neutrophil")])
def test_variant_changes_pixels_inside_the_cell_only(variant, cell_type):
    plain = _cell(cell_type, seed=3)
    marked = apply_variant(np.random.default_rng(1), _cell(cell_type, seed=3), variant)
    changed = np.any(plain.rgb != marked.rgb, axis=-1)
    assert changed[plain.mask].sum() >= 5  # something visible was drawn
    assert np.array_equal(plain.mask, marked.mask)  # the outline is the cell's own
    assert marked.info["variants"] == [variant]


def test_what_each_variant_draws():
    rod = apply_variant(np.random.default_rng(0), _cell("myeloblast"), "auer rod")
    assert rod.info["rods"] == 1
    bundle = apply_variant(np.random.default_rng(0), _cell("promyelocyte"), "auer bundle")
    assert 3 <= bundle.info["rods"] <= 6
    before = _cell("myeloblast", seed=5)
    cup = apply_variant(np.random.default_rng(0), _cell("myeloblast", seed=5), "cup nucleus")
    lost = (before.sem == NUCLEUS) & (cup.sem == CYTOPLASM)
    assert cup.info["cup_px"] == lost.sum() > 0.08 * (before.sem[before.mask] == NUCLEUS).sum()
    pelger = apply_variant(np.random.default_rng(0), _cell("segmented neutrophil"),
                           "pseudo-pelger")
    assert pelger.info["lobes"] == 2
    eos = apply_variant(np.random.default_rng(0), _cell("eosinophil"), "abnormal granules")
    assert eos.info["extra_granule_px"] > 0


def test_unknown_variant():
    with pytest.raises(ValueError, match="unknown cell variant 'smudge'; valid: "):
        apply_variant(np.random.default_rng(0), _cell("lymphocyte"), "smudge")
    assert sorted(VARIANTS) == sorted(["hypergranular", "auer bundle", "auer rod",
                                       "cup nucleus", "abnormal granules", "pseudo-pelger"])
