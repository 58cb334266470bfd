"""What a whole smear holds, in micrometres, before any pixel is drawn: :func:`plan_smear`.

A :class:`SmearLayout` lists every cell of a rectangle of smear (a camera field or a stitched
scan) as a :class:`PlannedCell`: lineage, type, white-cell attributes, centre in micrometres and
the seed its drawing uses. The layout does not depend on the magnification, so one layout
rendered at 0.5x, 1x and 2x (:mod:`unihema.synth.render`) holds the same cells with scaled boxes.

Conventions:

* coordinates are micrometres from the top-left corner, ``y`` down, ``x`` right;
* ``PlannedCell.id`` is 1-based and increases in drawing order (red cells, platelets, white
  cells, parasites); it is the value of the cell in the instance map;
* :data:`NATIVE_UM_PER_PX` is the scale at which :mod:`unihema.synth.cells` draws (a normal red
  cell's equivalent diameter is ~18.5 px = 7.5 um); other scales resample each drawn cell;
* the composition parameters (:class:`SmearSpec`) are met by quotas, not by chance: the number
  of cells of each type is the nearest integer share of the planned total, so a summary of the
  truth is close to the requested shares and exactly known.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from unihema.synth.field import sample_optics
from unihema.synth.profiles import RED_MORPHOLOGIES, WHITE_TYPES, sample_white_attributes

#: Micrometres per pixel of the drawing code: a normal red cell (~18.5 px across) is 7.5 um.
NATIVE_UM_PER_PX = 0.406
#: The four lineages of the truth, in drawing order.
LINEAGES = ("red blood cell", "platelet", "white blood cell", "malaria parasite")
RED_CELL_UM = 7.5
#: Red cells a ring form may infect (fragments and sickle cells are too thin to show a ring).
HOSTS = ("red blood cell", "target cell", "elliptocyte", "teardrop cell", "spherocyte")
#: A normal adult differential (percent of white cells).
NORMAL_DIFFERENTIAL = {"segmented neutrophil": 58.0, "band neutrophil": 3.0, "lymphocyte": 30.0,
                       "monocyte": 6.0, "eosinophil": 2.5, "basophil": 0.5}
# Collision radius of a red cell, in units of its drawing radius (elongated shapes reach further).
_RED_REACH = {"red blood cell": 1.0, "target cell": 1.0, "spherocyte": 0.78, "elliptocyte": 1.1,
              "sickle cell": 1.15, "schistocyte": 0.88, "teardrop cell": 1.1}
_WHITE_R = {"big": 21.5 * NATIVE_UM_PER_PX, "small": 13.8 * NATIVE_UM_PER_PX}
_PLATELET_R = 4.7 * NATIVE_UM_PER_PX
_BUCKET_UM = 20.0


@dataclass
class SmearSpec:
    """Composition of a synthetic smear (all shares are of the planned totals).

    ``red_coverage``: fraction of the area covered by red cells (0.45: a thin-film monolayer
    with small gaps). ``red_mix``: abnormal morphology -> share of red cells, the rest normal
    (e.g. ``{"schistocyte": 0.02, "target cell": 0.05}``). ``white_per_100_red`` and
    ``platelets_per_100_red`` set those counts; ``white_mix``: white type -> relative weight
    (default :data:`NORMAL_DIFFERENTIAL`). ``parasitaemia``: infected red cells per red cell
    (0..1), one ring form each. ``domain``: stain/optics shift as in ``SynthConfig.domain``.
    """

    red_coverage: float = 0.45
    red_mix: Dict[str, float] = field(default_factory=dict)
    white_per_100_red: float = 1.0
    white_mix: Dict[str, float] = field(default_factory=lambda: dict(NORMAL_DIFFERENTIAL))
    platelets_per_100_red: float = 8.0
    parasitaemia: float = 0.0
    domain: float = 0.0

    def check(self) -> None:
        """Raise ``ValueError`` naming every out-of-range field."""
        bad = []
        if not 0.0 <= self.red_coverage <= 0.7:
            bad.append(f"red_coverage={self.red_coverage} (need 0..0.7)")
        for k, v in self.red_mix.items():
            if k not in RED_MORPHOLOGIES[1:] or not 0.0 <= v <= 1.0:
                bad.append(f"red_mix[{k!r}]={v} (need an abnormal type of "
                           f"{RED_MORPHOLOGIES[1:]} and a share 0..1)")
        if sum(self.red_mix.values()) > 1.0 + 1e-9:
            bad.append(f"red_mix shares sum to {sum(self.red_mix.values()):.3f} (need <= 1)")
        for k, v in self.white_mix.items():
            if k not in WHITE_TYPES or v < 0:
                bad.append(f"white_mix[{k!r}]={v} (need a type of {WHITE_TYPES}, weight >= 0)")
        if self.white_mix and sum(self.white_mix.values()) <= 0:
            bad.append("white_mix weights sum to 0")
        for name in ("white_per_100_red", "platelets_per_100_red"):
            if getattr(self, name) < 0:
                bad.append(f"{name}={getattr(self, name)} (need >= 0)")
        if not 0.0 <= self.parasitaemia <= 0.5:
            bad.append(f"parasitaemia={self.parasitaemia} (need a share 0..0.5)")
        if not 0.0 <= self.domain <= 1.0:
            bad.append(f"domain={self.domain} (need 0..1)")
        if bad:
            raise ValueError("bad smear spec: " + "; ".join(bad))

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PlannedCell:
    """One cell of a layout. ``radius`` is the drawing radius of a red cell in native pixels
    (0 for the others); ``host`` the id of a parasite's red cell (0 otherwise); ``seam`` True
    for cells deliberately centred on a seam line."""

    id: int
    lineage: str
    type: str
    y: float
    x: float
    seed: int
    radius: float = 0.0
    attributes: Dict[str, str] = field(default_factory=dict)
    host: int = 0
    seam: bool = False


@dataclass
class SmearLayout:
    """Every cell of a ``height_um`` x ``width_um`` rectangle of smear, in drawing order."""

    width_um: float
    height_um: float
    cells: List[PlannedCell]
    optics: Dict[str, Any]
    spec: SmearSpec
    seed: int
    seam_um: Optional[float] = None

    def infected(self) -> Dict[int, int]:
        """Red-cell id -> id of the parasite it carries."""
        return {c.host: c.id for c in self.cells if c.lineage == "malaria parasite"}


def quotas(weights: Dict[str, float], n: int) -> List[str]:
    """``n`` names split by ``weights`` with the largest-remainder rule (exact shares)."""
    names = [k for k, w in weights.items() if w > 0]
    if n <= 0 or not names:
        return []
    w = np.array([weights[k] for k in names], np.float64)
    raw = w / w.sum() * n
    k = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - k), kind="stable")[:n - int(k.sum())]:
        k[i] += 1
    return [name for name, m in zip(names, k) for _ in range(int(m))]


class _Grid:
    """Spatial hash of placed discs (centre, radius, lineage) in micrometres."""

    def __init__(self):
        self.cells: Dict[Tuple[int, int], List[Tuple[float, float, float, str]]] = {}

    def near(self, y: float, x: float):
        iy, ix = int(y // _BUCKET_UM), int(x // _BUCKET_UM)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                yield from self.cells.get((iy + dy, ix + dx), ())

    def add(self, y: float, x: float, r: float, lineage: str) -> None:
        self.cells.setdefault((int(y // _BUCKET_UM), int(x // _BUCKET_UM)), []).append(
            (y, x, r, lineage))

    def free(self, y: float, x: float, r: float, lineage: str) -> bool:
        """Whether a disc fits: red cells may overlap each other by ~20 % of a diameter; every
        other pair keeps apart (a platelet sits in a gap, a white cell overlaps little)."""
        for oy, ox, orr, ol in self.near(y, x):
            d2 = (oy - y) ** 2 + (ox - x) ** 2
            if lineage == "red blood cell" and ol == "red blood cell":
                need = 0.8 * (r + orr)
            elif "white blood cell" in (lineage, ol) and "red blood cell" in (lineage, ol):
                need = max(r, orr) + 0.55 * min(r, orr)
            else:
                need = r + orr + 0.3
            if d2 < need * need:
                return False
        return True


def _seam_point(rng, width: float, height: float, seam: float) -> Optional[Tuple[float, float]]:
    """A point on a vertical or horizontal seam line, or on a crossing of both (1 in 4)."""
    xs = np.arange(seam, width - 1e-6, seam)
    ys = np.arange(seam, height - 1e-6, seam)
    if not len(xs) and not len(ys):
        return None
    if len(xs) and len(ys) and rng.random() < 0.25:
        return float(ys[rng.integers(len(ys))]), float(xs[rng.integers(len(xs))])
    if len(xs) and (not len(ys) or rng.random() < 0.5):
        return float(rng.uniform(8, height - 8)), float(xs[rng.integers(len(xs))])
    return float(ys[rng.integers(len(ys))]), float(rng.uniform(8, width - 8))


def plan_smear(width_um: float, height_um: float, seed: int = 0,
               spec: Optional[SmearSpec] = None, seam_um: Optional[float] = None,
               seam_cells: int = 0) -> SmearLayout:
    """Place every cell of a ``height_um`` x ``width_um`` rectangle (deterministic in ``seed``).

    ``seam_um``/``seam_cells``: centre ``seam_cells`` cells (about 55 % red, 30 % white, 15 %
    platelets) exactly on the lines ``x = k * seam_um`` or ``y = k * seam_um`` (a quarter on
    crossings of both), before the others are placed, so analysis tiles of that side cut them.
    Centres stay at least 3 um inside the rectangle; cells near the border may be cut by it.
    """
    spec = spec or SmearSpec()
    spec.check()
    if width_um < 10 or height_um < 10:
        raise ValueError(f"smear of {width_um:.1f} x {height_um:.1f} um is too small (need 10+)")
    rng = np.random.default_rng([int(seed), 2026])
    optics = sample_optics(rng, spec.domain)
    area = width_um * height_um
    n_red = int(round(spec.red_coverage * area / (np.pi * (RED_CELL_UM / 2) ** 2)))
    reds = quotas({**{"red blood cell": max(0.0, 1.0 - sum(spec.red_mix.values()))},
                   **spec.red_mix}, n_red)
    reds = [reds[i] for i in rng.permutation(len(reds))]
    whites = quotas(spec.white_mix or NORMAL_DIFFERENTIAL,
                    int(round(n_red * spec.white_per_100_red / 100)))
    whites = [whites[i] for i in rng.permutation(len(whites))]
    n_plt = int(round(n_red * spec.platelets_per_100_red / 100))

    grid = _Grid()
    placed: Dict[str, List[Dict[str, Any]]] = {k: [] for k in LINEAGES}

    def new(lineage: str, kind: str) -> Dict[str, Any]:
        rec: Dict[str, Any] = dict(lineage=lineage, type=kind, seed=int(rng.integers(2 ** 62)),
                                   radius=0.0, attributes={}, seam=False)
        if lineage == "red blood cell":
            rec["radius"] = float(rng.uniform(8.8, 10.4))
            rec["r_um"] = rec["radius"] * _RED_REACH[kind] * NATIVE_UM_PER_PX
        elif lineage == "white blood cell":
            rec["attributes"] = sample_white_attributes(rng, kind)
            rec["r_um"] = _WHITE_R[rec["attributes"]["cell_size"]]
        else:
            rec["r_um"] = _PLATELET_R
        return rec

    def put(rec: Dict[str, Any], tries: int, at=None) -> bool:
        lo = 3.0
        for _ in range(tries):
            y, x = at() if at else (rng.uniform(lo, height_um - lo), rng.uniform(lo, width_um - lo))
            if grid.free(y, x, rec["r_um"], rec["lineage"]):
                grid.add(y, x, rec["r_um"], rec["lineage"])
                rec.update(y=float(y), x=float(x))
                placed[rec["lineage"]].append(rec)
                return True
        return False

    if seam_um and seam_cells > 0 and max(width_um, height_um) > seam_um:
        for _ in range(int(seam_cells)):
            u = rng.random()
            if u < 0.3 and whites:
                rec = new("white blood cell", whites.pop())
            elif u < 0.45:
                rec = new("platelet", "platelet")
                n_plt -= 1
            elif reds:
                rec = new("red blood cell", reds.pop())
            else:
                continue
            rec["seam"] = True
            put(rec, 60, at=lambda: _seam_point(rng, width_um, height_um, float(seam_um)))
    for kind in whites:
        put(new("white blood cell", kind), 40)
    for kind in reds:
        put(new("red blood cell", kind), 25)
    for _ in range(max(0, n_plt)):
        put(new("platelet", "platelet"), 40)

    red = placed["red blood cell"]
    hosts = [r for r in red if r["type"] in HOSTS]
    n_inf = min(len(hosts), int(round(spec.parasitaemia * len(red))))
    parasites = []
    for j in sorted(int(i) for i in rng.permutation(len(hosts))[:n_inf]):
        host = hosts[j]
        off = 0.25 * host["radius"] * NATIVE_UM_PER_PX * rng.random()
        phi = rng.uniform(0, 2 * np.pi)
        parasites.append(dict(lineage="malaria parasite", type="ring form",
                              seed=int(rng.integers(2 ** 62)), radius=0.0, attributes={},
                              seam=False, y=host["y"] + off * np.sin(phi),
                              x=host["x"] + off * np.cos(phi), host_rec=host))
    cells: List[PlannedCell] = []
    for rec in red + placed["platelet"] + placed["white blood cell"] + parasites:
        cid = len(cells) + 1
        rec["id"] = cid
        host = rec.pop("host_rec", None)
        cells.append(PlannedCell(id=cid, lineage=rec["lineage"], type=rec["type"],
                                 y=float(rec["y"]), x=float(rec["x"]), seed=rec["seed"],
                                 radius=rec["radius"], attributes=dict(rec["attributes"]),
                                 host=host["id"] if host else 0, seam=rec["seam"]))
    return SmearLayout(float(width_um), float(height_um), cells, optics, spec, int(seed),
                       seam_um=float(seam_um) if seam_um else None)


def lineage_of(label: str) -> str:
    """The lineage of a type name (``"ring form"`` -> ``"malaria parasite"``)."""
    if label in RED_MORPHOLOGIES:
        return "red blood cell"
    if label in WHITE_TYPES:
        return "white blood cell"
    if label == "platelet":
        return "platelet"
    if label == "ring form":
        return "malaria parasite"
    raise ValueError(f"unknown cell type '{label}'")


def seam_lines(extent_px: int, seam_px: Optional[int]) -> Sequence[int]:
    """Pixel positions ``k * seam_px`` strictly inside ``(0, extent_px)``."""
    if not seam_px:
        return []
    return list(range(int(seam_px), int(extent_px), int(seam_px)))
