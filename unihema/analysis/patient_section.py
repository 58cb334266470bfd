"""The patient section of ``report.html``: the patient-level verdict and its evidence cells.

:func:`render` takes the verdict dict of :func:`unihema.patient.verdict.patient_verdict`
(``diagnosis``, ``probabilities``, ``evidence``, ``findings``, ``warnings``; its optional
``_pictures``: evidence index -> ``uint8 [h, w, 3]``) and returns one ``<section
id="patient">``: the probabilities as a table (each value in ``data-diagnosis="<name>"``), the
cells the attention weighed most as pictures (``<figure class="evidence" data-id=...
data-attention=...>``), the findings the patient embedding lies nearest, and the warnings.
The report shows the section when the analysis carries a ``patient`` verdict
(``unihema analyze --patient-encoder DIR``).
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any, Dict

import numpy as np
from PIL import Image


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _picture(image: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).convert("RGB").save(buf, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def render(verdict: Dict[str, Any]) -> str:
    """The ``<section id="patient">`` of ``verdict`` (module docstring)."""
    probs = sorted(verdict.get("probabilities", {}).items(), key=lambda kv: -kv[1])
    rows = "".join(f'<tr><td>{_e(d)}</td><td class="n" data-diagnosis="{_e(d)}">{p:.3f}</td>'
                   f'</tr>' for d, p in probs)
    pics = verdict.get("_pictures", {})
    figs = []
    for ev in verdict.get("evidence", []):
        img = (f'<img alt="cell" src="{_picture(pics[ev["index"]])}">'
               if ev["index"] in pics else "")
        cid = ev.get("cell_id")
        figs.append(f'<figure class="cell evidence" data-id="{_e(cid if cid is not None else "")}"'
                    f' data-attention="{ev["attention"]}">{img}<figcaption>'
                    f'{_e(ev.get("type") or "")} {100 * ev["attention"]:.1f} %</figcaption>'
                    f'</figure>')
    finds = ", ".join(f'{_e(f["finding"])} ({f["similarity"]:.2f})'
                      for f in verdict.get("findings", []))
    warn = "".join(f"<li>{_e(w)}</li>" for w in verdict.get("warnings", []))
    return (f'<section id="patient"><h2>Patient level: <span id="patient-diagnosis">'
            f'{_e(verdict.get("diagnosis", ""))}</span></h2><p class="muted">From '
            f'{verdict.get("n_cells", 0)} white cells by the patient encoder; a research '
            f'output, not a diagnosis.</p><div class="cols"><table><tr><th>diagnosis</th>'
            f'<th>probability</th></tr>{rows}</table></div>'
            + (f'<h3>Findings nearest the patient embedding</h3><p>{finds}</p>' if finds else "")
            + f'<h3>Evidence: the cells the attention weighed most</h3><div class="grid">'
            f'{"".join(figs)}</div>'
            + (f'<ul class="flags">{warn}</ul>' if warn else "") + "</section>")
