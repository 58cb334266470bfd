"""Synthetic patient cohorts with exact truth: :func:`generate_cohort`.

Each patient gets a diagnosis, a white-cell differential drawn around the diagnosis' mean, a
share of abnormal cells per type (:mod:`unihema.synth.variants`), genetic findings correlated
with the diagnosis, and one stain for all of the patient's cells. Every cell is one single
white-cell crop (``crop_size`` pixels, 64 as the demo's classify crops) drawn by
:func:`unihema.synth.cells.draw_white_cell` at the generator's native magnification, with a
few red cells around it, so a model trained on the synthetic smears reads them as it reads its
own crops.

The diagnoses (:data:`SUBTYPES`) are patterned on the genetic classes of AML cohorts:

=================  ===========================================  =============================
diagnosis          differential (mean share of white cells)     abnormal cells
=================  ===========================================  =============================
healthy            normal adult differential                    none
pml::rara          promyelocytes ~45 %, blasts ~15 %            most promyelocytes
                                                                hypergranular, some with Auer
                                                                bundles
npm1               blasts ~40 %, monocytes ~10 %                10-35 % of blasts cup-like
runx1::runx1t1     the same differential as npm1                10-35 % of blasts with one
                                                                long Auer rod, some
                                                                pseudo-Pelger neutrophils
cbfb::myh11        blasts ~30 %, monocytes ~16 %, eosinophils   most eosinophils with dark
                   ~6 %                                         granules (a few % of cells)
=================  ===========================================  =============================

So the differential alone separates healthy, APL and (partly) CBFB::MYH11, but not NPM1 from
RUNX1::RUNX1T1: those differ only in the look of a minority of their blasts. Differentials
vary between patients (a Dirichlet draw of concentration :data:`CONCENTRATION` around the
mean), so the classes also overlap in proportions.

Findings: the defining alteration (missed with probability 0.05), co-mutations with their
typical frequencies, and with probability 0.04 one co-mutation the subtype does not list;
healthy donors occasionally carry a clonal-haematopoiesis mutation (DNMT3A, TET2).

Layout written by :func:`generate_cohort`::

    <out>/cohort.jsonl          one PatientBag per line (unihema.data.patients), exact truth
    <out>/cohort.json           name, counts, generator settings and seconds taken
    <out>/cells/<patient>/<i>.png

Patient ``i`` depends only on ``(seed, i)``, so a cohort is reproducible and its first
patients do not change when more are asked for.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from unihema.data.patients import PatientBag, write_cohort
from unihema.synth import cells
from unihema.synth.cells import WHITE_TYPES, sample_white_attributes
from unihema.synth.field import apply_optics, sample_optics
from unihema.synth.variants import apply_variant
from unihema.utils import atomic_write_text

GENERATOR = "unihema.synth.cohort"
VERSION = 1
#: Dirichlet concentration of a patient's differential around its diagnosis' mean
CONCENTRATION = 25.0


@dataclass(frozen=True)
class Subtype:
    """A diagnosis of the synthetic cohort.

    ``differential``: white-cell type -> mean share (normalised). ``variants``: cell type ->
    ``(variant, (lo, hi))``: each patient draws the share of that type's cells showing the
    variant uniformly in ``[lo, hi]``. ``findings``: ``(name, probability)``, the defining
    alteration first.
    """

    name: str
    differential: Dict[str, float]
    variants: Dict[str, Tuple[Tuple[str, Tuple[float, float]], ...]] = field(default_factory=dict)
    findings: Tuple[Tuple[str, float], ...] = ()


_AML_BLASTY = {"segmented neutrophil": 17, "band neutrophil": 3, "lymphocyte": 22,
               "monocyte": 10, "eosinophil": 2, "basophil": 0.5, "myeloblast": 40,
               "promyelocyte": 4, "atypical lymphocyte": 1.5}
SUBTYPES: Tuple[Subtype, ...] = (
    Subtype("healthy",
            {"segmented neutrophil": 57, "band neutrophil": 4, "lymphocyte": 29,
             "monocyte": 6, "eosinophil": 2.5, "basophil": 0.5, "myeloblast": 0.01,
             "promyelocyte": 0.01, "atypical lymphocyte": 1.0},
            {}, (("DNMT3A", 0.04), ("TET2", 0.03))),
    Subtype("pml::rara",
            {"segmented neutrophil": 14, "band neutrophil": 2, "lymphocyte": 18,
             "monocyte": 3, "eosinophil": 1, "basophil": 0.5, "myeloblast": 15,
             "promyelocyte": 45, "atypical lymphocyte": 1.5},
            {"promyelocyte": (("hypergranular", (0.6, 0.95)), ("auer bundle", (0.05, 0.25)))},
            (("PML::RARA", 0.95), ("FLT3-ITD", 0.35), ("WT1", 0.1))),
    Subtype("npm1", dict(_AML_BLASTY),
            {"myeloblast": (("cup nucleus", (0.1, 0.35)),)},
            (("NPM1", 0.95), ("FLT3-ITD", 0.35), ("DNMT3A", 0.45), ("IDH2", 0.15))),
    Subtype("runx1::runx1t1", dict(_AML_BLASTY),
            {"myeloblast": (("auer rod", (0.1, 0.35)),),
             "segmented neutrophil": (("pseudo-pelger", (0.05, 0.25)),)},
            (("RUNX1::RUNX1T1", 0.95), ("KIT", 0.25), ("ASXL2", 0.2), ("NRAS", 0.15))),
    Subtype("cbfb::myh11",
            {"segmented neutrophil": 15, "band neutrophil": 3, "lymphocyte": 20,
             "monocyte": 16, "eosinophil": 6, "basophil": 0.5, "myeloblast": 30,
             "promyelocyte": 3, "atypical lymphocyte": 1.5},
            {"eosinophil": (("abnormal granules", (0.5, 0.9)),)},
            (("CBFB::MYH11", 0.95), ("KIT", 0.3), ("NRAS", 0.35))),
)
#: diagnosis name -> its :class:`Subtype`
SUBTYPE = {s.name: s for s in SUBTYPES}
#: every finding the generator can write
FINDINGS: Tuple[str, ...] = tuple(dict.fromkeys(f for s in SUBTYPES for f, _ in s.findings))
#: the findings that define no diagnosis here (co-mutations, clonal haematopoiesis)
CO_MUTATIONS: Tuple[str, ...] = tuple(f for f in FINDINGS if f not in
                                      {s.findings[0][0] for s in SUBTYPES if s.name != "healthy"})
#: probability that the defining alteration is missed / an unrelated co-mutation is added
MISS_DEFINING, SPURIOUS = 0.05, 0.04


# ----------------------------------------------------------------------------- one cell
def red_pool(rng: np.random.Generator, n: int = 12) -> List[cells.Patch]:
    """``n`` normal red cells drawn around the origin, reused (shifted) by a patient's crops:
    drawing them is a third of a crop's time, and one smear's red cells look alike anyway."""
    return [cells.draw_red_cell(rng, "red blood cell", 0.0, 0.0, rng.uniform(8.8, 10.4))
            for _ in range(n)]


def render_cell(rng: np.random.Generator, cell_type: str, variant: Optional[str],
                optics: Dict, size: int = 64,
                reds: Optional[Sequence[cells.Patch]] = None) -> Tuple[np.ndarray, Dict[str, str]]:
    """One white cell of ``cell_type`` (with ``variant`` drawn over it, or none) centred in a
    ``size`` x ``size`` crop with 2-5 red cells around (from ``reds``, a :func:`red_pool`;
    freshly drawn when ``None``), through the patient's ``optics``.

    Returns the crop [size, size, 3] uint8 and the cell's attributes (all 11 schema keys).
    The lamp's vignette and gradient are a quarter of a field's: a crop sees a quarter of it.
    """
    attrs = sample_white_attributes(rng, cell_type)
    c = size / 2 + rng.uniform(-1.5, 1.5, 2)
    canvas = np.empty((size, size, 3), np.float32)
    canvas[:] = np.array([236.0, 229.0, 226.0]) * rng.uniform(0.98, 1.02, 3)
    white = cells.draw_white_cell(rng, cell_type, attrs, float(c[0]), float(c[1]))
    if variant:
        apply_variant(rng, white, variant)
    reach = white.info["radius"] * 1.05
    pool = reds if reds else red_pool(rng, 5)
    for _ in range(int(rng.integers(2, 6))):
        red = pool[int(rng.integers(len(pool)))]
        ang = rng.uniform(0, 2 * np.pi)
        dist = reach + red.info["radius"] * rng.uniform(0.6, 1.4)
        _paste(canvas, red, int(np.floor(c[0] + dist * np.sin(ang))),
               int(np.floor(c[1] + dist * np.cos(ang))))
    _paste(canvas, white)
    look = dict(optics, vignette=optics["vignette"] / 4,
                gradient=[g / 4 for g in optics["gradient"]])
    return apply_optics(canvas, look, rng), attrs


def _paste(canvas: np.ndarray, p: cells.Patch, dy: int = 0, dx: int = 0) -> None:
    """Paint ``p`` (moved by ``dy, dx`` pixels) onto ``canvas`` where its mask is set."""
    h, w = canvas.shape[:2]
    y0, x0 = p.y0 + dy, p.x0 + dx
    ya, xa = max(0, y0), max(0, x0)
    yb, xb = min(h, y0 + p.mask.shape[0]), min(w, x0 + p.mask.shape[1])
    if yb <= ya or xb <= xa:
        return
    m = p.mask[ya - y0:yb - y0, xa - x0:xb - x0]
    canvas[ya:yb, xa:xb][m] = p.rgb[ya - y0:yb - y0, xa - x0:xb - x0][m]


# ----------------------------------------------------------------------------- one patient
@dataclass
class PatientDraw:
    """What a patient is, before any pixel is drawn: diagnosis, findings, differential, the
    share of each type's cells that shows each variant, and the cells (type, variant)."""

    index: int
    diagnosis: str
    findings: List[str]
    differential: Dict[str, float]
    variant_shares: Dict[str, Dict[str, float]]
    cells: List[Tuple[str, Optional[str]]]


def patient_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of patient ``index``: depends only on ``(seed, index)``."""
    return np.random.default_rng([int(seed), 0xC0407, int(index)])


def diagnoses_for(n: int, seed: int, names: Sequence[str]) -> List[str]:
    """``n`` diagnoses, as balanced as ``n`` allows (counts differ by at most one): each block
    of ``len(names)`` consecutive patients holds every diagnosis once, in an order seeded by
    ``(seed, block)``, so patient ``i``'s diagnosis does not depend on ``n``."""
    out: List[str] = []
    for block in range((n + len(names) - 1) // len(names)):
        order = np.random.default_rng([int(seed), 0xD1A6, block]).permutation(len(names))
        out.extend(names[int(i)] for i in order)
    return out[:n]


def draw_patient(rng: np.random.Generator, index: int, diagnosis: str,
                 n_cells: int) -> PatientDraw:
    """Draw a patient of ``diagnosis`` with ``n_cells`` cells (see the module docstring)."""
    sub = SUBTYPE[diagnosis]
    mean = np.array([sub.differential.get(t, 0.0) for t in WHITE_TYPES], np.float64)
    mean = np.maximum(mean / mean.sum(), 1e-4)
    props = rng.dirichlet(mean / mean.sum() * CONCENTRATION)
    counts = rng.multinomial(n_cells, props)
    shares = {t: {v: float(rng.uniform(*rng_)) for v, rng_ in vs}
              for t, vs in sub.variants.items()}
    out: List[Tuple[str, Optional[str]]] = []
    for t, k in zip(WHITE_TYPES, counts):
        for _ in range(int(k)):
            variant = None
            for v, p in shares.get(t, {}).items():  # first variant that fires wins
                if rng.random() < p:
                    variant = v
                    break
            out.append((t, variant))
    order = rng.permutation(len(out))
    return PatientDraw(index, diagnosis, draw_findings(rng, sub),
                       {t: float(p) for t, p in zip(WHITE_TYPES, props)}, shares,
                       [out[int(i)] for i in order])


def draw_findings(rng: np.random.Generator, sub: Subtype) -> List[str]:
    """The patient's genetic findings: each of the subtype's with its probability (the
    defining one missed with :data:`MISS_DEFINING`), plus, with :data:`SPURIOUS`, one of the
    :data:`CO_MUTATIONS` the subtype does not list (never a defining fusion or mutation)."""
    out = []
    for k, (name, p) in enumerate(sub.findings):
        if sub.name != "healthy" and k == 0:
            p = 1.0 - MISS_DEFINING
        if rng.random() < p:
            out.append(name)
    if rng.random() < SPURIOUS:
        others = [f for f in CO_MUTATIONS if f not in out and f not in dict(sub.findings)]
        out.append(others[int(rng.integers(len(others)))])
    return out


def render_patient(draw: PatientDraw, out: Path, rng: np.random.Generator, size: int = 64,
                   domain: float = 0.0) -> PatientBag:
    """Render and write the cells of ``draw`` under ``out/cells/<patient id>/``; the bag's
    cell paths are relative to ``out``."""
    pid = patient_id(draw.index)
    optics = sample_optics(rng, domain)
    reds = red_pool(rng)
    # The patient's folder is written whole under a hidden name, then renamed into place: a
    # reader sees all of a patient's cells or none (one rename, not one per file).
    final = out / "cells" / pid
    partial = out / "cells" / f".{pid}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    paths, types, variants = [], [], []
    for i, (t, v) in enumerate(draw.cells):
        img, _ = render_cell(rng, t, v, optics, size, reds)
        (partial / f"{i:04d}.png").write_bytes(_png(img))
        paths.append(f"cells/{pid}/{i:04d}.png")  # relative to the cohort root
        types.append(t)
        variants.append(v)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    n = max(1, len(draw.cells))
    abnormal = sum(v is not None for v in variants)
    meta = {"differential": {t: round(p, 4) for t, p in draw.differential.items()},
            "variant_shares": {t: {v: round(p, 4) for v, p in d.items()}
                               for t, d in draw.variant_shares.items()},
            "cell_variants": variants, "abnormal_fraction": round(abnormal / n, 4),
            "findings_known": True, "optics": {k: np.round(v, 4).tolist()
                                               for k, v in optics.items()}}
    return PatientBag(pid, [draw.diagnosis], list(draw.findings), paths, list(types), meta)


def patient_id(index: int) -> str:
    return f"SYN{index + 1:04d}"


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


# ----------------------------------------------------------------------------- a cohort
def parse_range(text: Union[str, int, Tuple[int, int]]) -> Tuple[int, int]:
    """``"100:500"`` -> ``(100, 500)``; ``"200"`` or ``200`` -> ``(200, 200)``."""
    if isinstance(text, tuple):
        lo, hi = text
    elif isinstance(text, int):
        lo = hi = text
    else:
        a, sep, b = str(text).partition(":")
        try:
            lo, hi = int(a), int(b) if sep else int(a)
        except ValueError:
            raise ValueError(f"cells per patient: expected N or LO:HI, got '{text}'") from None
    if not 1 <= lo <= hi:
        raise ValueError(f"cells per patient: need 1 <= LO <= HI, got {lo}:{hi}")
    return int(lo), int(hi)


def _one(job) -> PatientBag:
    out, seed, index, diagnosis, lo, hi, size, domain = job
    rng = patient_rng(seed, index)
    n_cells = int(rng.integers(lo, hi + 1))
    draw = draw_patient(rng, index, diagnosis, n_cells)
    return render_patient(draw, Path(out), rng, size, domain)


def generate_cohort(out: Union[str, Path], patients: int = 300,
                    cells_per_patient: Union[str, Tuple[int, int]] = (100, 200), seed: int = 0,
                    size: int = 64, diagnoses: Optional[Sequence[str]] = None,
                    domain: float = 0.0, workers: int = 1, name: str = "synthetic cohort",
                    progress: bool = False) -> Dict:
    """Write a synthetic cohort into ``out`` (layout in the module docstring); returns the
    summary written to ``cohort.json`` (counts, settings, ``seconds``).

    ``diagnoses``: names of :data:`SUBTYPES` to draw (default all, balanced). ``workers``:
    processes (patients are independent, so the output is identical for any number).
    """
    names = list(diagnoses or SUBTYPE)
    unknown = [d for d in names if d not in SUBTYPE]
    if unknown:
        raise ValueError(f"unknown diagnoses {unknown}; valid: {list(SUBTYPE)}")
    if patients < 1:
        raise ValueError(f"patients: need at least 1, got {patients}")
    if size < 32:
        raise ValueError(f"size: a crop of {size} px cannot hold a white cell (need >= 32)")
    lo, hi = parse_range(cells_per_patient)
    out = Path(out)
    t0 = time.perf_counter()
    jobs = [(str(out), seed, i, d, lo, hi, size, domain)
            for i, d in enumerate(diagnoses_for(patients, seed, names))]
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            bags = list(_progress(pool.imap(_one, jobs), len(jobs), progress))
    else:
        bags = list(_progress(map(_one, jobs), len(jobs), progress))
    seconds = time.perf_counter() - t0
    write_cohort(out, bags, name)
    summary = json.loads((out / "cohort.json").read_text())
    summary.update(generator=GENERATOR, version=VERSION, seed=seed, crop_size=size,
                   cells_per_patient_range=[lo, hi], domain=domain, workers=workers,
                   seconds=round(seconds, 1),
                   subtypes={s.name: {"differential": s.differential,
                                      "variants": {t: dict(v) for t, v in s.variants.items()},
                                      "findings": dict(s.findings)} for s in SUBTYPES
                             if s.name in names})
    atomic_write_text(out / "cohort.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _progress(it, total: int, show: bool):
    if not show:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc="patients", unit="patient")
