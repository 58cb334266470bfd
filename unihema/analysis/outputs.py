"""The files of an analysis, written into one folder by :func:`write_analysis`:

* ``cells.jsonl`` and ``cells.csv``: one record per cell (:mod:`unihema.analysis.records`);
* ``summary.json``: :class:`~unihema.analysis.summary.SmearSummary` as a dict, plus
  ``model_um_per_px``, ``fields`` (name, width, height, factor, tiles, cells), ``timings``
  (seconds per stage) and ``trust`` (the trust state the cells were judged by, ``null``
  without one: :func:`unihema.analysis.run.trust_info`);
* ``summary.csv``: the summary as table rows (:meth:`SmearSummary.rows`);
* ``overlays/<field>.png`` (:mod:`unihema.analysis.overlay`) and ``report.html``
  (:mod:`unihema.analysis.report`).

Every file is written atomically (a temporary file moved into place).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Union

from unihema.analysis.overlay import write_overlays
from unihema.analysis.records import write_cells_csv, write_cells_jsonl, write_json
from unihema.analysis.report import GALLERY_LIMIT, write_report


def summary_dict(analysis) -> Dict[str, Any]:
    """What ``summary.json`` holds (module docstring)."""
    d = analysis.to_dict()
    return {**d["summary"], "model_um_per_px": d["model_um_per_px"], "fields": d["fields"],
            "timings": d["timings"], "trust": d.get("trust")}


def write_analysis(analysis, out: Union[str, Path], gallery_limit: int = GALLERY_LIMIT
                   ) -> Dict[str, Path]:
    """Write every file of ``analysis`` into ``out`` (created); name -> path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"cells.jsonl": write_cells_jsonl(out / "cells.jsonl", analysis.cells),
             "cells.csv": write_cells_csv(out / "cells.csv", analysis.cells),
             "summary.json": write_json(out / "summary.json", summary_dict(analysis)),
             "summary.csv": analysis.summary.write_csv(out / "summary.csv")}
    overlays = write_overlays(analysis, out)
    paths.update({f"overlay:{name}": out / rel for name, rel in overlays.items()})
    paths["report.html"] = write_report(analysis, out, overlays, gallery_limit)
    return paths
