"""Per-smear statistics from the typed cells of one smear (one field, several, or a scan).

:func:`summarize` turns :class:`~unihema.analysis.records.CellRecord` s into a
:class:`SmearSummary`:

* counts per type and per lineage (and per field);
* the white-cell **differential**: percent per white-cell type of the white cells it rests on
  (smudge cells are counted but left out, as in a manual differential), each with its 95 %
  Wilson score interval (:func:`wilson`);
* **red-cell morphology**: percent of red cells per abnormal type, its interval and a grade
  from :data:`GRADING` (below);
* **platelets** per field and per 100 red cells (clumps counted apart and flagged: the count
  is then a lower bound); nucleated red cells per 100 white cells;
* **parasitaemia**: infected red cells per 100 red cells, with its interval, when any red
  cell is infected. A red cell is infected when its type is ``infected red blood cell``, its
  ``infected`` attribute is yes/true, or the centre of a parasite's box (lineage ``malaria
  parasite``) of the same field lies in its box. ``None`` when no parasite is found;
* **flags**: ``no_cells`` (nothing found), ``scale_implausible`` (the scale is far from any
  smear image's, :mod:`unihema.analysis.scale`), ``few_white_cells`` (differential on fewer
  than 100), ``few_red_cells`` (grades on fewer than 1000 red cells, the count ICSH asks for
  schistocytes), ``platelet_clumps``. With ``no_cells`` or ``scale_implausible`` the image is
  not taken for a smear (``is_smear`` false): the counts of what was found are kept, the
  statistics derived from them are left empty rather than invented;
* **review**: whether the smear goes to a person because it holds cells that must not be
  missed (blasts, promyelocytes, atypical lymphocytes, parasites, schistocytes above a
  share, unknown cells): :mod:`unihema.analysis.flags`.

Grading (:data:`GRADING`), after the ICSH 2015 recommendation (Palmer et al., Int J Lab
Hematol 37:287), percent of red cells, ``p`` continuous::

    type                                     1+            2+            3+
    macrocyte, microcyte, hypochromic cell,  11 <= p <= 20  20 < p <= 50  p > 50
      poikilocyte
    target cell, spherocyte, stomatocyte,    5 <= p <= 20   20 < p <= 50  p > 50
      ovalocyte, elliptocyte, teardrop cell,
      burr cell, acanthocyte
    schistocyte, sickle cell                 0 < p < 1      1 <= p <= 2   p > 2

Below 1+ the grade is ``""`` (not graded: within normal limits). Other abnormal red-cell
types get a percentage without a grade. A lab with its own table passes it as ``grading``.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from unihema.analysis.flags import DEFAULT_POLICY, FlagPolicy, review
from unihema.analysis.records import CellRecord, write_json, write_text_atomic
from unihema.analysis.scale import ScaleEstimate

#: z of a two-sided 95 % interval
Z95 = 1.959963984540054
#: one grade's lower bound: (percent, inclusive)
Bound = Tuple[float, bool]
_SIZE: Tuple[Bound, Bound, Bound] = ((11.0, True), (20.0, False), (50.0, False))
_SHAPE: Tuple[Bound, Bound, Bound] = ((5.0, True), (20.0, False), (50.0, False))
_RARE: Tuple[Bound, Bound, Bound] = ((0.0, False), (1.0, True), (2.0, False))
#: red-cell type -> the lower bounds of 1+, 2+ and 3+ (see the module docstring)
GRADING: Dict[str, Tuple[Bound, Bound, Bound]] = {
    **{t: _SIZE for t in ("macrocyte", "microcyte", "hypochromic cell", "poikilocyte")},
    **{t: _SHAPE for t in ("target cell", "spherocyte", "stomatocyte", "ovalocyte",
                           "elliptocyte", "teardrop cell", "burr cell", "acanthocyte")},
    **{t: _RARE for t in ("schistocyte", "sickle cell")},
}
#: red-cell types that are not an abnormal morphology
NOT_ABNORMAL = ("red blood cell", "unclassified red blood cell", "infected red blood cell")
#: white-cell types counted but left out of the differential
NOT_IN_DIFFERENTIAL = ("smudge cell",)
MIN_WHITE_CELLS = 100
MIN_RED_CELLS = 1000
RED, WHITE, PLATELET = "red blood cell", "white blood cell", "platelet"
PARASITE, NRBC = "malaria parasite", "nucleated red cell precursor"


def lineage_of(cell_type: str) -> str:
    """The lineage of a canonical type, its broadest term (``"band neutrophil"`` -> ``"white
    blood cell"``, ``"ring form"`` -> ``"malaria parasite"``); ``"other"`` for a name outside
    the vocabulary."""
    from unihema.data import vocab

    try:
        return (vocab.ancestors(cell_type) or [cell_type])[-1]
    except KeyError:
        return "other"


def wilson(k: int, n: int, z: float = Z95) -> Tuple[float, float]:
    """Wilson score interval ``(low, high)`` of a proportion ``k / n`` (fractions in
    ``[0, 1]``); ``(0, 1)`` for ``n == 0``."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"wilson: expected 0 <= k <= n, got k={k}, n={n}")
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def grade(percent: float, bounds: Tuple[Bound, Bound, Bound]) -> str:
    """``"1+"``, ``"2+"``, ``"3+"`` or ``""`` for ``percent`` under a grading row."""
    out = ""
    for g, (value, inclusive) in enumerate(bounds, start=1):
        if percent > value or (inclusive and percent == value):
            out = f"{g}+"
    return out


@dataclass(frozen=True)
class Proportion:
    """``count`` of ``total`` as ``percent`` with its 95 % Wilson interval ``low``..``high``
    (percent); ``grade`` for a red-cell morphology (``""`` when not graded or below 1+)."""

    count: int
    total: int
    percent: float
    low: float
    high: float
    grade: Optional[str] = None

    @classmethod
    def of(cls, count: int, total: int, grade_row=None) -> "Proportion":
        lo, hi = wilson(count, total)
        pct = 100.0 * count / total if total else 0.0
        return cls(count, total, pct, 100.0 * lo, 100.0 * hi,
                   None if grade_row is None else grade(pct, grade_row))


@dataclass
class SmearSummary:
    """The statistics of one smear (see the module docstring). Percentages in percent;
    ``None`` where a statistic does not apply (no white cells for a differential, no
    parasites, not a smear)."""

    n_cells: int
    n_fields: int
    counts: Dict[str, int]
    lineages: Dict[str, int]
    per_field: Dict[str, Dict[str, int]]
    differential: Optional[Dict[str, Proportion]]
    differential_n: int
    red_morphology: Optional[Dict[str, Proportion]]
    red_cells_n: int
    platelets: Optional[Dict[str, Any]]
    nrbc_per_100_wbc: Optional[float]
    parasitaemia: Optional[Proportion]
    needs_review: int
    scale: Optional[Dict[str, Any]]
    flags: List[str] = field(default_factory=list)
    messages: List[str] = field(default_factory=list)
    is_smear: bool = True
    #: smear-level review (:func:`unihema.analysis.flags.review`): ``{"needs_review": bool,
    #: "flags": [{kind, count, share, threshold, reason}], "checked": [kinds]}``
    review: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def write(self, path: Union[str, Path]) -> Path:
        """``summary.json``, atomically."""
        return write_json(path, self.to_dict())

    def rows(self) -> List[List[Any]]:
        """The summary as table rows ``[section, name, count, total, percent, low, high,
        grade]`` (sections: type, lineage, differential, red morphology, parasitaemia,
        platelets, flag), for a spreadsheet."""
        out: List[List[Any]] = []
        out += [["type", t, k, self.n_cells, "", "", "", ""] for t, k in self.counts.items()]
        out += [["lineage", t, k, self.n_cells, "", "", "", ""]
                for t, k in self.lineages.items()]
        for section, table in (("differential", self.differential),
                               ("red morphology", self.red_morphology),
                               ("parasitaemia", None if self.parasitaemia is None
                                else {"infected red blood cell": self.parasitaemia})):
            for name, p in (table or {}).items():
                out.append([section, name, p.count, p.total, round(p.percent, 3),
                            round(p.low, 3), round(p.high, 3), p.grade or ""])
        for name, value in (self.platelets or {}).items():
            out.append(["platelets", name, "" if value is None else value, "", "", "", "",
                        ""])
        out += [["flag", f, "", "", "", "", "", ""] for f in self.flags]
        out += [["review flag", f["kind"], f["count"], "",
                 "" if f["share"] is None else round(f["share"], 3), "", "", ""]
                for f in (self.review or {}).get("flags", [])]
        return out

    def write_csv(self, path: Union[str, Path]) -> Path:
        """:meth:`rows` under a header as CSV, atomically."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["section", "name", "count", "total", "percent", "low", "high",
                         "grade"])
        writer.writerows(self.rows())
        return write_text_atomic(path, buf.getvalue())


def _infected(cells: Sequence[CellRecord]) -> List[bool]:
    """Per cell: a red cell that is infected (see the module docstring); False otherwise."""
    from unihema.data import vocab

    parasites = defaultdict(list)
    for c in cells:
        if c.lineage == PARASITE:
            parasites[c.field].append(c.centre)
    out = []
    for c in cells:
        if c.lineage != RED:
            out.append(False)
            continue
        hit = c.type in vocab.PARENTS and vocab.is_a(c.type, "infected red blood cell")
        hit = hit or str(c.attributes.get("infected", "")).lower() in ("yes", "true", "1")
        x0, y0, x1, y1 = c.box
        hit = hit or any(x0 <= x < x1 and y0 <= y < y1 for x, y in parasites[c.field])
        out.append(hit)
    return out


def summarize(cells: Sequence[CellRecord], n_fields: Optional[int] = None,
              scale: Optional[ScaleEstimate] = None,
              grading: Mapping[str, Tuple[Bound, Bound, Bound]] = GRADING,
              policy: Optional[FlagPolicy] = None) -> SmearSummary:
    """The statistics of one smear's ``cells``. ``n_fields``: the fields imaged (default: the
    distinct ``field`` values; give it when a field may hold no cell); ``scale``: the scale
    used, checked for plausibility; ``policy``: the smear-level review rules (default
    :data:`unihema.analysis.flags.DEFAULT_POLICY`), applied to the cells found even when the
    image is not taken for a smear."""
    cells = list(cells)
    fields = sorted({c.field for c in cells})
    n_fields = len(fields) if n_fields is None else int(n_fields)
    counts = dict(sorted(Counter(c.type for c in cells).items()))
    lineages = dict(sorted(Counter(c.lineage for c in cells).items()))
    per_field = {f: dict(sorted(Counter(c.lineage for c in cells if c.field == f).items()))
                 for f in fields}
    flags: List[str] = []
    messages: List[str] = []
    if not cells:
        flags.append("no_cells")
        messages.append("no cells found: this does not look like a blood smear")
    if scale is not None and not scale.plausible:
        flags.append("scale_implausible")
        messages.append(f"scale implausible: {scale.reason}")
    is_smear = not flags
    summary = SmearSummary(
        n_cells=len(cells), n_fields=n_fields, counts=counts, lineages=lineages,
        per_field=per_field, differential=None, differential_n=0, red_morphology=None,
        red_cells_n=lineages.get(RED, 0), platelets=None, nrbc_per_100_wbc=None,
        parasitaemia=None, needs_review=sum(c.needs_review for c in cells),
        scale=None if scale is None else scale.to_dict(), flags=flags, messages=messages,
        is_smear=is_smear, review=review(cells, policy or DEFAULT_POLICY))
    if not is_smear:
        return summary

    whites = [c.type for c in cells if c.lineage == WHITE and c.type not in NOT_IN_DIFFERENTIAL]
    n_white = len(whites)
    if n_white:
        summary.differential = {t: Proportion.of(k, n_white)
                                for t, k in sorted(Counter(whites).items())}
    summary.differential_n = n_white
    if 0 < n_white < MIN_WHITE_CELLS:
        flags.append("few_white_cells")
        messages.append(f"the differential rests on {n_white} white cells "
                        f"(at least {MIN_WHITE_CELLS} are usually counted)")

    n_red = summary.red_cells_n
    if n_red:
        abnormal = Counter(c.type for c in cells if c.lineage == RED and c.type not in NOT_ABNORMAL)
        summary.red_morphology = {t: Proportion.of(k, n_red, grading.get(t))
                                  for t, k in sorted(abnormal.items())}
        if n_red < MIN_RED_CELLS:
            flags.append("few_red_cells")
            messages.append(f"red-cell percentages rest on {n_red} red cells "
                            f"(at least {MIN_RED_CELLS} are counted for a schistocyte grade)")

    plt = [c for c in cells if c.lineage == PLATELET]
    clumps = sum(c.type == "platelet clump" for c in plt)
    n_plt = len(plt) - clumps
    summary.platelets = {
        "count": n_plt, "clumps": clumps,
        "per_field": n_plt / n_fields if n_fields else None,
        "per_100_red_cells": 100.0 * n_plt / n_red if n_red else None}
    if clumps:
        flags.append("platelet_clumps")
        messages.append(f"{clumps} platelet clump(s): the platelet count is a lower bound")
    if n_white:
        summary.nrbc_per_100_wbc = 100.0 * lineages.get(NRBC, 0) / n_white

    infected = sum(_infected(cells))
    if n_red and (infected or lineages.get(PARASITE, 0)):
        summary.parasitaemia = Proportion.of(infected, n_red)
    return summary
