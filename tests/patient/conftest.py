"""Fixtures of the patient tests: planted cell features (a diagnosis shows as a few percent of
cells of its own kind), a tiny random model saved as a pipeline folder, and a small cohort of
cell pictures on disk."""

from __future__ import annotations

from pathlib import Path
from typing import List

import numpy as np
import pytest
import torch
from PIL import Image

from unihema.data.patients import PatientBag, write_cohort
from unihema.patient.features import CellFeatures

WHITE_TYPES = ["segmented neutrophil", "lymphocyte", "monocyte"]
DIAGNOSES = ["healthy", "acute promyelocytic leukemia", "npm1"]
FINDINGS = {"healthy": [], "acute promyelocytic leukemia": ["PML::RARA"], "npm1": ["NPM1"]}


def planted(n_patients: int = 60, dim: int = 16, cells=(30, 50), share: float = 0.08,
            seed: int = 0):
    """``(bags, features)``: every patient draws cells around three common centres in the same
    proportions; a leukaemia adds its own kind of cell in ``share`` of the cells, so the
    diagnosis lies in a minority of the cells only (``meta["signal"]``: their indices)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(3 + len(DIAGNOSES), dim, generator=g),
                                            dim=-1)
    bags: List[PatientBag] = []
    embs, probs = [], []
    for i in range(n_patients):
        d = DIAGNOSES[i % len(DIAGNOSES)]
        n = int(torch.randint(cells[0], cells[1] + 1, (1,), generator=g))
        kinds = torch.randint(0, 3, (n,), generator=g)
        if d != "healthy":
            extra = torch.rand(n, generator=g) < share
            kinds[extra] = 3 + DIAGNOSES.index(d)
        x = centres[kinds] + 0.15 * torch.randn(n, dim, generator=g)
        embs.append(torch.nn.functional.normalize(x, dim=-1))
        probs.append(torch.nn.functional.one_hot(kinds.clamp(max=2), 3).float())
        bags.append(PatientBag(f"P{i:03d}", [d], list(FINDINGS[d]),
                               [f"cells/P{i:03d}/{j}.png" for j in range(n)],
                               [WHITE_TYPES[min(int(k), 2)] for k in kinds],
                               {"signal": (kinds >= 3).nonzero().flatten().tolist(),
                                "cell_variants": ["planted" if k >= 3 else None
                                                  for k in kinds.tolist()]}))
    feats = CellFeatures([b.patient_id for b in bags], embs, probs, list(WHITE_TYPES), "planted")
    return bags, feats


@pytest.fixture(scope="session")
def planted_cohort():
    return planted()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, tiny):
    """A tiny random model that types white cells, saved with save_pretrained."""
    from unihema.config import load_config
    from unihema.modeling.model import UniHema

    torch.manual_seed(1)  # not the analysis tests' model (seed 0): fingerprints differ
    cfg = load_config(None, tiny)
    cfg.model.reading.types = {"white blood cell": list(WHITE_TYPES)}
    cfg.model.reading.crop_size = 32
    path = tmp_path_factory.mktemp("patient") / "model"
    UniHema.from_config(cfg).save_pretrained(path, extra={"image_size": 128, "crop_size": 32})
    return path


@pytest.fixture(scope="session")
def pipe(model_dir):
    from unihema.api import UniHemaPipeline

    return UniHemaPipeline.from_pretrained(model_dir)


def cell_picture(kind: int, rng: np.random.Generator, side: int = 32) -> np.ndarray:
    """A round cell on a pale background; ``kind`` sets its colour and size."""
    yy, xx = np.mgrid[:side, :side]
    r = side * (0.25 + 0.05 * kind)
    disc = (yy - side / 2) ** 2 + (xx - side / 2) ** 2 < r * r
    img = np.full((side, side, 3), 235, np.uint8)
    colour = np.array([[150, 60, 160], [90, 70, 170], [200, 120, 90], [170, 40, 60]][kind])
    img[disc] = np.clip(colour + rng.normal(0, 8, (int(disc.sum()), 3)), 0, 255)
    return img


@pytest.fixture(scope="session")
def cohort_dir(tmp_path_factory):
    """A cohort folder: 10 patients of 2 diagnoses, 6-9 cell pictures each, written with
    ``write_cohort`` (cohort.jsonl)."""
    root = tmp_path_factory.mktemp("cohort")
    rng = np.random.default_rng(0)
    bags = []
    for i in range(10):
        d = DIAGNOSES[i % 2]
        n = 6 + i % 4
        cells, types = [], []
        for j in range(n):
            kind = int(rng.integers(0, 3)) if (d == "healthy" or j % 3) else 3
            p = Path(root) / "cells" / f"P{i:02d}" / f"{j}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(cell_picture(kind, rng)).save(p)
            cells.append(str(p))
            types.append(WHITE_TYPES[min(kind, 2)])
        bags.append(PatientBag(f"P{i:02d}", [d], list(FINDINGS[d]), cells, types))
    write_cohort(root, bags, "test cohort")
    return root
