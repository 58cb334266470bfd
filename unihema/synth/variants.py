"""Abnormal white-cell morphology drawn over a finished cell: the signs of leukaemia subtypes.

:func:`unihema.synth.cells.draw_white_cell` draws a cell from its attributes; a *variant* then
changes that patch in place, the way a subtype changes a minority of a patient's cells:

=====================  ====================================================================
variant                what is drawn (and the subtype it is patterned on)
=====================  ====================================================================
``hypergranular``      dense coarse purple-red granules over cytoplasm *and* nucleus, the
                       nucleus often bilobed: the abnormal promyelocyte of APL (PML::RARA)
``auer bundle``        3-6 thin red-purple rods crossing in the cytoplasm ("faggot cell",
                       APL)
``auer rod``           one long slender rod in a cytoplasm with fine azurophil granules and
                       a pale perinuclear hof (t(8;21) blasts, RUNX1::RUNX1T1)
``cup nucleus``        a deep pale invagination into the nucleus, a third to half of its
                       width ("cup-like" blasts of NPM1-mutated AML)
``abnormal granules``  large dark purple granules among the orange ones of an eosinophil
                       (inv(16), CBFB::MYH11)
``pseudo-pelger``      two round lobes joined by a strand, cytoplasm hypogranular: dysplastic
                       neutrophils (t(8;21))
=====================  ====================================================================

Conventions as in :mod:`unihema.synth.cells`: reference stain colours before optics, sizes in
pixels at the generator's native magnification. Each function mutates ``patch.rgb`` /
``patch.sem`` only where ``patch.mask`` is set, records what it drew in ``patch.info``
(``rods``, ``cup_px``, ``extra_granule_px``...), and is deterministic given ``rng``.
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple

import numpy as np

from unihema.synth.cells import (CYTOPLASM, CYTO_COLOUR, NUCLEUS, Patch, _dots, _segment)

AUER = np.array([188.0, 62.0, 112.0])  # reddish-purple rod (azurophil material)
HYPER_GRANULE = np.array([112.0, 28.0, 92.0])
DARK_GRANULE = np.array([62.0, 20.0, 88.0])
CUP = np.array([206.0, 200.0, 234.0])  # the pale invagination (Golgi zone) of a cup blast
HOF = np.array([224.0, 214.0, 230.0])  # the pale perinuclear zone of a t(8;21) blast
HYPOGRANULAR = CYTO_COLOUR["light blue"]


def _centre(region: np.ndarray) -> Tuple[float, float, float]:
    """Centroid ``(y, x)`` of ``region`` (pixel centres) and its equivalent radius."""
    ys, xs = np.nonzero(region)
    return float(ys.mean() + 0.5), float(xs.mean() + 0.5), float(np.sqrt(region.sum() / np.pi))


def _grid(patch: Patch) -> Tuple[np.ndarray, np.ndarray]:
    h, w = patch.mask.shape
    return (np.arange(h, dtype=np.float32)[:, None] + 0.5,
            np.arange(w, dtype=np.float32)[None, :] + 0.5)


def _rods(rng, patch: Patch, count: int, length: Tuple[float, float],
          width: float, spread: float) -> int:
    """Draw ``count`` rods in the cytoplasm, around one point when ``spread`` is small."""
    cyto = patch.mask & (patch.sem == CYTOPLASM)
    if cyto.sum() < 12:
        return 0
    yy, xx = _grid(patch)
    ys, xs = np.nonzero(cyto)
    i = int(rng.integers(ys.size))
    cy, cx = ys[i] + 0.5, xs[i] + 0.5
    base = rng.uniform(0, np.pi)
    drawn = np.zeros_like(cyto)
    for _ in range(count):
        th = base + rng.normal(0, spread)
        half = rng.uniform(*length) / 2
        oy, ox = rng.normal(0, 1.2, 2) if count > 1 else (0.0, 0.0)
        p = (cy + oy - half * np.sin(th), cx + ox - half * np.cos(th))
        q = (cy + oy + half * np.sin(th), cx + ox + half * np.cos(th))
        drawn |= _segment(yy, xx, p, q, width / 2)
    drawn &= cyto
    patch.rgb[drawn] = AUER * rng.uniform(0.9, 1.05)
    return int(drawn.sum() > 0) * count


def hypergranular(rng, patch: Patch) -> None:
    nuc = patch.mask & (patch.sem == NUCLEUS)
    region = patch.mask & ~(_ring(patch) & ~nuc)
    g = _dots(rng, region, int(0.16 * region.sum()), (1.2, 1.8))
    patch.rgb[g] = HYPER_GRANULE * rng.uniform(0.85, 1.1, size=(int(g.sum()), 1))
    patch.info["extra_granule_px"] = int(g.sum())
    if nuc.any() and rng.random() < 0.5:  # a cleft: the bilobed ("butterfly") nucleus
        cy, cx, r = _centre(nuc)
        yy, xx = _grid(patch)
        th = rng.uniform(0, np.pi)
        cleft = nuc & (np.abs((yy - cy) * np.cos(th) - (xx - cx) * np.sin(th)) < 0.7) \
            & ((yy - cy) ** 2 + (xx - cx) ** 2 < (0.8 * r) ** 2)
        patch.rgb[cleft] = HYPER_GRANULE * 1.4
        patch.info["cleft_px"] = int(cleft.sum())


def _ring(patch: Patch) -> np.ndarray:
    """The outermost pixel ring of the cell (granules stay inside the membrane)."""
    m = patch.mask
    inner = m.copy()
    inner[1:] &= m[:-1]
    inner[:-1] &= m[1:]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def auer_bundle(rng, patch: Patch) -> None:
    patch.info["rods"] = _rods(rng, patch, int(rng.integers(3, 7)), (6.0, 11.0), 1.1, 0.35)


def auer_rod(rng, patch: Patch) -> None:
    nuc = patch.mask & (patch.sem == NUCLEUS)
    cyto = patch.mask & (patch.sem == CYTOPLASM) & ~_ring(patch)
    if nuc.any():  # a pale perinuclear hof (Golgi zone) beside the nucleus
        cy, cx, r = _centre(nuc)
        yy, xx = _grid(patch)
        th = rng.uniform(0, 2 * np.pi)
        hy, hx = cy + 1.05 * r * np.sin(th), cx + 1.05 * r * np.cos(th)
        hof = cyto & ((yy - hy) ** 2 + (xx - hx) ** 2 < (0.5 * r) ** 2)
        patch.rgb[hof] = HOF * rng.uniform(0.97, 1.02, 3)
        patch.info["hof_px"] = int(hof.sum())
    g = _dots(rng, cyto, int(0.2 * cyto.sum()), (0.6, 0.9))  # azurophil granules
    patch.rgb[g] = DARK_GRANULE * rng.uniform(0.9, 1.1, size=(int(g.sum()), 1))
    patch.info["rods"] = _rods(rng, patch, 1, (11.0, 16.0), 1.8, 0.0)


def cup_nucleus(rng, patch: Patch) -> None:
    nuc = patch.mask & (patch.sem == NUCLEUS)
    if nuc.sum() < 20:
        patch.info["cup_px"] = 0
        return
    cy, cx, r = _centre(nuc)
    yy, xx = _grid(patch)
    th = rng.uniform(0, 2 * np.pi)
    d, rc = r * rng.uniform(0.65, 0.8), r * rng.uniform(0.5, 0.62)
    cup = nuc & ((yy - cy - d * np.sin(th)) ** 2 + (xx - cx - d * np.cos(th)) ** 2 < rc * rc)
    patch.rgb[cup] = CUP * rng.uniform(0.97, 1.02, 3)
    patch.sem[cup] = CYTOPLASM
    patch.info["cup_px"] = int(cup.sum())


def abnormal_granules(rng, patch: Patch) -> None:
    cyto = patch.mask & (patch.sem == CYTOPLASM) & ~_ring(patch)
    g = _dots(rng, cyto, int(0.05 * cyto.sum()), (1.5, 2.1))
    patch.rgb[g] = DARK_GRANULE * rng.uniform(0.85, 1.1, size=(int(g.sum()), 1))
    patch.info["extra_granule_px"] = int(g.sum())


def pseudo_pelger(rng, patch: Patch) -> None:
    nuc = patch.mask & (patch.sem == NUCLEUS)
    cyto = patch.mask & (patch.sem == CYTOPLASM)
    colour = np.asarray(HYPOGRANULAR) * rng.uniform(0.97, 1.03, 3)
    patch.rgb[cyto] = colour  # hypogranular: the granules are washed out
    if nuc.any():
        cy, cx, r = _centre(nuc)
        yy, xx = _grid(patch)
        th = rng.uniform(0, np.pi)
        dense = patch.rgb[nuc].mean(0)
        patch.rgb[nuc] = colour
        patch.sem[nuc] = CYTOPLASM
        rl, d = 0.62 * r, 0.85 * r
        lobes = np.zeros_like(nuc)
        for s in (-1, 1):
            ly, lx = cy + s * d * np.sin(th), cx + s * d * np.cos(th)
            lobes |= (yy - ly) ** 2 + (xx - lx) ** 2 < rl * rl
        lobes |= _segment(yy, xx, (cy - d * np.sin(th), cx - d * np.cos(th)),
                          (cy + d * np.sin(th), cx + d * np.cos(th)), 0.6)
        lobes &= patch.mask & ~_ring(patch)
        patch.rgb[lobes] = dense
        patch.sem[lobes] = NUCLEUS
        patch.info["lobes"] = 2


#: variant name -> function drawing it over a finished white-cell patch
VARIANTS: Dict[str, Callable[[np.random.Generator, Patch], None]] = {
    "hypergranular": hypergranular,
    "auer bundle": auer_bundle,
    "auer rod": auer_rod,
    "cup nucleus": cup_nucleus,
    "abnormal granules": abnormal_granules,
    "pseudo-pelger": pseudo_pelger,
}


def apply_variant(rng: np.random.Generator, patch: Patch, variant: str) -> Patch:
    """Draw ``variant`` (a key of :data:`VARIANTS`) over ``patch`` in place; returns it."""
    try:
        fn = VARIANTS[variant]
    except KeyError:
        raise ValueError(f"unknown cell variant '{variant}'; valid: {sorted(VARIANTS)}") from None
    fn(rng, patch)
    patch.info.setdefault("variants", [])
    patch.info["variants"] = list(patch.info["variants"]) + [variant]  # type: ignore[operator]
    return patch
