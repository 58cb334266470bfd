"""The cell record of a smear analysis and its files: ``cells.jsonl``, ``cells.csv``.

One :class:`CellRecord` per cell found. Writers are atomic: each file is written to a
temporary file beside it and moved into place with ``os.replace``, so a reader never sees a
half-written file and an interrupted run leaves the previous file intact.

``cells.jsonl``: one JSON object per line, :meth:`CellRecord.to_dict` (nested
``probabilities``, ``attributes`` and ``measurements``; ``null`` for what is unknown).

``cells.csv``: one row per cell, columns :data:`CSV_COLUMNS` then ``p:<type>`` for every type
that has a probability in any record (sorted), then ``attr:<name>`` for every attribute
(sorted); empty cells for what is unknown. Floats keep 6 significant digits;
``prediction_set`` is its types joined by ``|``, most probable first.

Trust (when the model folder holds a trust state, :mod:`unihema.trust`): ``probabilities``
are the state's calibrated ones, ``prediction_set`` the conformal set of types (never empty),
``unknown_score`` how little the cell looks like any trained type (higher: less) and
``unknown`` whether it passes the state's threshold; ``needs_review`` and ``reason`` then
carry the state's referral (:func:`assess`). Without a state the three are ``null`` (empty in
the CSV).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from unihema.analysis.measure import FIELDS as MEASUREMENT_FIELDS
from unihema.analysis.measure import Measurements
from unihema.utils import atomic_write_text

PathLike = Union[str, Path]

#: the fixed leading columns of cells.csv
CSV_COLUMNS = ("id", "field", "x0", "y0", "x1", "y1", "lineage", "type", "probability",
               "score", "uncertainty", "needs_review", "reason", "prediction_set",
               "unknown_score", "unknown") + MEASUREMENT_FIELDS
#: separator of the types of a prediction set in cells.csv
SET_SEPARATOR = "|"


@dataclass
class CellRecord:
    """One cell of a smear.

    ``id``: unique within the analysis; ``field``: the field (file name or scan) it lies in;
    ``box``: ``(x0, y0, x1, y1)`` in the field's original pixels; ``lineage``: the broadest
    term of its type (``"red blood cell"``, ``"white blood cell"``, ``"platelet"``,
    ``"malaria parasite"``, ...; see :func:`unihema.analysis.summary.lineage_of`); ``type``:
    the canonical type; ``probabilities``: calibrated probability per type the model knows
    (sums to 1 over them when given); ``score``: the detection confidence; ``attributes``:
    morphology attributes (``unihema.data.vocab.ATTRIBUTES``); ``measurements``: from the
    segmentation, or ``None``; ``uncertainty``: in ``[0, 1]``, higher is less sure;
    ``needs_review`` and its ``reason``; with a trust state, ``prediction_set``,
    ``unknown_score`` and ``unknown`` (module docstring; ``None`` without one).
    """

    id: int
    field: str
    box: Tuple[float, float, float, float]
    lineage: str
    type: str
    probabilities: Dict[str, float] = field(default_factory=dict)
    score: float = 1.0
    attributes: Dict[str, str] = field(default_factory=dict)
    measurements: Optional[Measurements] = None
    uncertainty: float = 0.0
    needs_review: bool = False
    reason: str = ""
    prediction_set: Optional[List[str]] = None
    unknown_score: Optional[float] = None
    unknown: Optional[bool] = None

    def __post_init__(self) -> None:
        if len(self.box) != 4:
            raise ValueError(f"cell {self.id}: box must be (x0, y0, x1, y1), got {self.box!r}")
        self.box = tuple(float(v) for v in self.box)

    @property
    def centre(self) -> Tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2.0, (y0 + y1) / 2.0

    @property
    def probability(self) -> Optional[float]:
        """The probability of the record's own type, when known."""
        return self.probabilities.get(self.type)

    def to_dict(self) -> Dict[str, Any]:
        d = {f.name: dict(v) if isinstance(v := getattr(self, f.name), dict) else v
             for f in fields(self)}  # one level deep: asdict's deep copy cost ~2 ms a cell
        d["box"] = list(self.box)
        d["measurements"] = None if self.measurements is None else self.measurements.to_dict()
        return _finite(d)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "CellRecord":
        m = d.get("measurements")
        return cls(**{**d, "box": tuple(d["box"]),
                      "measurements": None if m is None else Measurements(**m)})


def _finite(value: Any) -> Any:
    """``inf``/``nan`` -> ``None`` (JSON has neither), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


# ----------------------------------------------------------------------------- review
#: types a person always looks at, however sure the model is: rare and consequential
ALWAYS_REVIEW = ("blast", "myeloblast", "lymphoblast", "monoblast", "promyelocyte",
                 "abnormal promyelocyte", "faggot cell", "hairy cell", "plasma cell",
                 "atypical lymphocyte", "prolymphocyte", "promonocyte", "erythroblast",
                 "proerythroblast", "unidentified cell", "ring form", "trophozoite",
                 "schizont", "gametocyte", "malaria parasite", "infected red blood cell")


def assess(probabilities: Dict[str, float], cell_type: Optional[str] = None,
           min_probability: float = 0.6, min_margin: float = 0.15,
           always: Sequence[str] = ALWAYS_REVIEW, cut: bool = False,
           trust: Optional[Any] = None) -> Tuple[float, bool, str]:
    """``(uncertainty, needs_review, reason)`` of a typed cell.

    ``uncertainty`` is ``1 - p`` of the most probable type (0 without probabilities). A cell
    needs review when that ``p`` is below ``min_probability``, when the two most probable
    types are within ``min_margin`` of each other, when its type (``cell_type``, default the
    most probable) is in ``always``, or when it was ``cut`` by a tile edge (its box is pieced
    together). ``reason`` lists every cause, ``"; "``-separated (empty when none).

    ``trust``: the cell's verdict of a trust state (:class:`unihema.trust.CellTrust`:
    ``refer``, ``reason``). It replaces the two fixed thresholds (``min_probability``,
    ``min_margin``) by the state's referral, fitted for a target accuracy on held-out cells;
    ``always`` and ``cut`` still apply.
    """
    ranked = sorted(probabilities.items(), key=lambda kv: -kv[1])
    top_type, top = ranked[0] if ranked else (cell_type, 1.0)
    cell_type = cell_type or top_type
    reasons = []
    if trust is not None:
        if trust.refer:
            reasons.append(trust.reason or "referred by the trust state")
    elif ranked and top < min_probability:
        reasons.append(f"low confidence ({top_type} {top:.2f})")
    if trust is None and len(ranked) > 1 and top - ranked[1][1] < min_margin:
        reasons.append(f"close call ({top_type} {top:.2f} vs {ranked[1][0]} "
                       f"{ranked[1][1]:.2f})")
    if cell_type in always:
        reasons.append(f"{cell_type}: always reviewed")
    if cut:
        reasons.append("cut by a tile edge")
    return (1.0 - top if ranked else 0.0), bool(reasons), "; ".join(reasons)


# ----------------------------------------------------------------------------- atomic files
def write_text_atomic(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`unihema.utils.atomic_write_text`:
    a temporary file in the same folder, then ``os.replace``; readable by others, as a lab's
    shared results folder needs); creates the folder. Returns the path."""
    if not isinstance(text, str):
        raise TypeError(f"{path}: expected text, got {type(text).__name__}")
    return atomic_write_text(path, text)


def write_json(path: PathLike, obj: Any) -> Path:
    """``obj`` as indented JSON (non-finite floats as ``null``), atomically."""
    return write_text_atomic(path, json.dumps(_finite(obj), indent=2, sort_keys=False) + "\n")


def write_cells_jsonl(path: PathLike, cells: Iterable[CellRecord]) -> Path:
    """One JSON object per cell per line, atomically."""
    lines = [json.dumps(c.to_dict(), sort_keys=False) for c in cells]
    return write_text_atomic(path, "".join(line + "\n" for line in lines))


def read_cells_jsonl(path: PathLike) -> List[CellRecord]:
    """The records of a ``cells.jsonl`` file."""
    text = Path(path).read_text(encoding="utf-8")
    return [CellRecord.from_dict(json.loads(line)) for line in text.splitlines() if line]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if not math.isfinite(value) else f"{value:.6g}"
    return str(value)


def csv_columns(cells: Sequence[CellRecord]) -> List[str]:
    """The columns of ``cells.csv`` for these records (see the module docstring)."""
    types = sorted({t for c in cells for t in c.probabilities})
    attrs = sorted({a for c in cells for a in c.attributes})
    return list(CSV_COLUMNS) + [f"p:{t}" for t in types] + [f"attr:{a}" for a in attrs]


def write_cells_csv(path: PathLike, cells: Sequence[CellRecord]) -> Path:
    """One row per cell (columns :func:`csv_columns`), atomically."""
    cells = list(cells)
    columns = csv_columns(cells)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for c in cells:
        m = c.measurements.to_dict() if c.measurements is not None else {}
        row = {"id": c.id, "field": c.field, "x0": c.box[0], "y0": c.box[1], "x1": c.box[2],
               "y1": c.box[3], "lineage": c.lineage, "type": c.type,
               "probability": c.probability, "score": c.score, "uncertainty": c.uncertainty,
               "needs_review": c.needs_review, "reason": c.reason,
               "prediction_set": None if c.prediction_set is None
               else SET_SEPARATOR.join(c.prediction_set),
               "unknown_score": c.unknown_score, "unknown": c.unknown, **m}
        row.update({f"p:{t}": p for t, p in c.probabilities.items()})
        row.update({f"attr:{a}": v for a, v in c.attributes.items()})
        writer.writerow([_fmt(row.get(col)) for col in columns])
    return write_text_atomic(path, buf.getvalue())
