"""``report.html``: one self-contained page for a smear analysis.

The page holds inline CSS and JavaScript and no external link; cell pictures are JPEG data URIs,
field overlays are the PNG files beside it (``overlays/``, :mod:`unihema.analysis.overlay`).
Sections, top to bottom:

* the header: cells, fields, the scale (given or estimated, with its interval) and, for an
  image not taken for a smear, a banner saying why instead of any statistic;
* the smear-level review (``#review-flags``, ``data-needs-review``): each flag that sends the
  smear to a person with its reason (:mod:`unihema.analysis.flags`), or the rules checked;
* per-cell trust (``#trust``): what the trust state the cells were judged by was fitted on,
  or that the model folder has none (cells then go to review by fixed thresholds);
* counts per lineage and per type (each count in an element ``data-count="<name>"``, lineage
  counts ``data-lineage="<name>"``, so tools can read them back), the white-cell differential
  as an inline SVG bar chart with its 95 % intervals and table, red-cell morphology with its
  grades, platelets, parasitaemia, flags;
* each field's overlay;
* the gallery: one ``<figure class="cell">`` per cell (``data-id``, ``data-type``,
  ``data-review``), grouped by type, most uncertain first; a "needs review only" filter (also
  set by opening the page as ``report.html#review``) that gathers the cells to review in one
  list, ``#review-list``, most doubtful first (:func:`review_rank`: unknown cells by
  unknown score, then larger prediction sets, then less confident), and a click that
  enlarges a cell with its details. A tile shows the cell's prediction set (``.set``) and
  its reason for review (``.why``) when it has them. At most ``gallery_limit`` cells are
  shown (the most uncertain of each type first); the page says when some are left out.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
from PIL import Image

from unihema.analysis import patient_section
from unihema.analysis.overlay import LINEAGE_COLOURS, colour_of
from unihema.analysis.records import CellRecord, write_text_atomic

#: most cells shown in the gallery
GALLERY_LIMIT = 5000

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;
background:#fafafa}
header{background:#263238;color:#fff;padding:14px 24px}
header h1{margin:0 0 4px;font-size:22px}
main{padding:8px 24px 40px;max-width:1280px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 16px;margin:14px 0}
h2{font-size:17px;margin:4px 0 10px}
table{border-collapse:collapse;font-size:14px;margin:4px 0}
td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.banner{background:#fdecea;border:1px solid #e57373;color:#b71c1c;padding:10px 14px;
border-radius:6px;margin:12px 0;font-weight:600}
.flags li{color:#8a6d00}
.grid{display:flex;flex-wrap:wrap;gap:6px}
.cols{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
figure.cell{margin:0;width:100px;cursor:zoom-in;border:2px solid transparent;border-radius:4px;
background:#f3f3f3;font-size:11px;text-align:center}
figure.cell[data-review="1"]{border-color:#e53935}
figure.cell img{width:96px;height:96px;display:block;margin:0 auto;image-rendering:auto}
figure.cell figcaption{padding:1px 2px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
figure.cell .set,figure.cell .why{display:block;overflow:hidden;text-overflow:ellipsis;
white-space:nowrap;font-size:10px;color:#555}
figure.cell .why{color:#b71c1c}
figure.cell[data-unknown="1"]{border-style:dashed}
#review-flags.flagged{background:#fff4e5;border-color:#f0a030}
#review-flags.flagged h2{color:#a65b00}
#review-flags.clear h2{color:#2e7d32}
.field img{max-width:100%;border:1px solid #ccc}
.legend span{display:inline-block;margin-right:14px;font-size:13px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
#zoom{position:fixed;inset:0;background:rgba(0,0,0,.75);display:none;align-items:center;
justify-content:center;z-index:9}
#zoom.on{display:flex}
#zoom div{background:#fff;padding:14px;border-radius:6px;max-width:520px}
#zoom img{width:384px;height:384px;image-rendering:pixelated;display:block}
#zoom pre{white-space:pre-wrap;font-size:12px;max-height:220px;overflow:auto}
.muted{color:#777;font-size:13px}
"""

_JS = """
function setFilter(on){var list=document.getElementById('review-list');
var figs=Array.prototype.slice.call(document.querySelectorAll('figure.cell'));
if(on){figs.filter(function(f){return f.dataset.review==='1';}).sort(function(a,b){
return a.dataset.rank-b.dataset.rank;}).forEach(function(f){list.appendChild(f);});}
else{figs.sort(function(a,b){return a.dataset.order-b.dataset.order;}).forEach(function(f){
document.getElementById('g-'+f.dataset.group).appendChild(f);});}
figs.forEach(function(f){f.style.display=(on&&f.dataset.review!=='1')?'none':'';});
list.parentElement.style.display=on?'':'none';
document.querySelectorAll('.gallery-group').forEach(function(g){
var shown=g.querySelectorAll('figure.cell:not([style*="none"])').length;
g.style.display=(shown&&!on)?'':'none';});}
document.getElementById('review-only').addEventListener('change',function(e){
setFilter(e.target.checked);});
document.querySelectorAll('figure.cell').forEach(function(f){f.addEventListener('click',
function(){var z=document.getElementById('zoom');z.querySelector('img').src=
f.querySelector('img').src;z.querySelector('pre').textContent=f.dataset.info;
z.classList.add('on');});});
document.getElementById('zoom').addEventListener('click',function(){
this.classList.remove('on');});
if(location.hash==='#review'){document.getElementById('review-only').checked=true;
setFilter(true);}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.1f}"


def thumbnail_uri(image: Union[bytes, np.ndarray], quality: int = 85) -> str:
    """A ``data:image/jpeg;base64,...`` URI of JPEG bytes or of ``uint8 [h, w, 3]``."""
    if not isinstance(image, bytes):
        buf = io.BytesIO()
        Image.fromarray(image).convert("RGB").save(buf, "JPEG", quality=quality)
        image = buf.getvalue()
    return "data:image/jpeg;base64," + base64.b64encode(image).decode("ascii")


def differential_svg(differential: Dict[str, Dict[str, Any]], width: int = 560) -> str:
    """An inline SVG bar chart of the differential: one bar per type (percent) with its 95 %
    interval as a whisker."""
    rows = sorted(differential.items(), key=lambda kv: -kv[1]["percent"])
    bar_h, left, right = 22, 170, 60
    span = width - left - right
    h = bar_h * len(rows) + 26
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" '
             f'role="img" aria-label="white-cell differential" id="differential-chart">']
    for i, (name, p) in enumerate(rows):
        y = 4 + i * bar_h
        w = span * p["percent"] / 100.0
        lo, hi = left + span * p["low"] / 100.0, left + span * p["high"] / 100.0
        parts += [f'<text x="{left - 6}" y="{y + 15}" font-size="12" text-anchor="end">'
                  f'{_e(name)}</text>',
                  f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 8}" '
                  f'fill="{LINEAGE_COLOURS["white blood cell"]}"/>',
                  f'<line x1="{lo:.1f}" x2="{hi:.1f}" y1="{y + 11}" y2="{y + 11}" '
                  f'stroke="#222" stroke-width="1.5"/>',
                  f'<text x="{left + span + 4}" y="{y + 15}" font-size="12">'
                  f'{p["percent"]:.1f} %</text>']
    y = 4 + len(rows) * bar_h
    for tick in (0, 25, 50, 75, 100):
        x = left + span * tick / 100.0
        parts.append(f'<text x="{x:.1f}" y="{y + 14}" font-size="10" text-anchor="middle" '
                     f'fill="#777">{tick}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _proportion_table(title: str, table: Dict[str, Dict[str, Any]], grade: bool,
                      key: str) -> str:
    head = "<tr><th>type</th><th>count</th><th>of</th><th>%</th><th>95 % interval</th>" + \
           ("<th>grade</th>" if grade else "") + "</tr>"
    rows = "".join(
        f'<tr data-{key}="{_e(n)}"><td>{_e(n)}</td><td class="n">{p["count"]}</td>'
        f'<td class="n">{p["total"]}</td><td class="n">{p["percent"]:.1f}</td>'
        f'<td class="n">{p["low"]:.1f}-{p["high"]:.1f}</td>'
        + (f'<td>{_e(p.get("grade") or "")}</td>' if grade else "") + "</tr>"
        for n, p in table.items())
    return f"<h3>{_e(title)}</h3><table>{head}{rows}</table>"


def _summary_html(s: Dict[str, Any]) -> str:
    out = []
    counts = "".join(f'<tr><td>{_e(n)}</td><td class="n" data-count="{_e(n)}">{k}</td></tr>'
                     for n, k in s["counts"].items())
    lineages = "".join(f'<tr><td><i style="background:{colour_of(n)};display:inline-block;'
                       f'width:10px;height:10px"></i> {_e(n)}</td>'
                       f'<td class="n" data-lineage="{_e(n)}">{k}</td></tr>'
                       for n, k in s["lineages"].items())
    out.append('<section id="counts"><h2>Counts</h2><div class="cols">'
               f'<table><tr><th>lineage</th><th>cells</th></tr>{lineages}</table>'
               f'<table><tr><th>type</th><th>cells</th></tr>{counts}</table></div></section>')
    if s.get("differential"):
        out.append(f'<section id="differential"><h2>White-cell differential '
                   f'(n = <span id="differential-n">{s["differential_n"]}</span>)</h2>'
                   + differential_svg(s["differential"])
                   + _proportion_table("", s["differential"], False, "differential")
                   + "</section>")
    red = s.get("red_morphology")
    if red is not None:
        body = _proportion_table("", red, True, "red") if red else \
            '<p class="muted">no abnormal red-cell type found</p>'
        out.append(f'<section id="red"><h2>Red-cell morphology (of {s["red_cells_n"]} red '
                   f'cells)</h2>{body}</section>')
    plt = s.get("platelets")
    if plt:
        per_f, per_100 = plt.get("per_field"), plt.get("per_100_red_cells")
        out.append('<section id="platelets"><h2>Platelets</h2><table>'
                   f'<tr><td>platelets</td><td class="n" id="platelet-count">{plt["count"]}'
                   f'</td></tr><tr><td>clumps</td><td class="n">{plt["clumps"]}</td></tr>'
                   f'<tr><td>per field</td><td class="n">{_pct(per_f)}</td></tr>'
                   f'<tr><td>per 100 red cells</td><td class="n">{_pct(per_100)}</td></tr>'
                   + (f'<tr><td>nucleated red cells per 100 white cells</td><td class="n">'
                      f'{_pct(s["nrbc_per_100_wbc"])}</td></tr>'
                      if s.get("nrbc_per_100_wbc") is not None else "")
                   + "</table></section>")
    para = s.get("parasitaemia")
    if para:
        out.append(f'<section id="parasitaemia"><h2>Parasitaemia</h2><p><b id="parasitaemia-'
                   f'percent">{para["percent"]:.2f}</b> % of red cells infected ({para["count"]}'
                   f' of {para["total"]}; 95 % interval {para["low"]:.2f}-{para["high"]:.2f} %)'
                   f'</p></section>')
    return "".join(out)


def review_rank(cell: CellRecord) -> tuple:
    """Sort key of the "needs review" list, most doubtful first: cells called unknown (by
    their unknown score), then larger prediction sets, then lower confidence, then id."""
    score = cell.unknown_score if cell.unknown_score is not None else float("-inf")
    size = len(cell.prediction_set) if cell.prediction_set is not None else 0
    return (not cell.unknown, -score, -size, -cell.uncertainty, cell.id)


def _review_html(s: Dict[str, Any]) -> str:
    """The smear-level review section (module docstring)."""
    review = s.get("review") or {}
    if not review:
        return ""
    flags = review.get("flags") or []
    checked = ", ".join(k.replace("_", " ") for k in review.get("checked") or [])
    if flags:
        items = "".join(f'<li data-flag="{_e(f["kind"])}">{_e(f["reason"])}</li>'
                        for f in flags)
        return (f'<section id="review-flags" class="flagged" data-needs-review="1"><h2>'
                f'Smear flagged for review</h2><ul>{items}</ul><p class="muted">rules '
                f'checked: {_e(checked)}</p></section>')
    return (f'<section id="review-flags" class="clear" data-needs-review="0"><h2>No '
            f'smear-level flag</h2><p class="muted">none of these was found: {_e(checked)}'
            f'</p></section>')


def _trust_html(trust: Optional[Dict[str, Any]]) -> str:
    """What the cells' doubt rests on: the trust state, or the fixed thresholds."""
    if not trust:
        return ('<section id="trust" data-trust="0"><h2>Per-cell trust</h2><p>No trust state '
                'in the model folder: a cell goes to review when its top probability is below '
                '0.6 or two types are within 0.15 of each other; no prediction set or unknown '
                'score is given (<code>unihema trust fit</code> adds them).</p></section>')
    fitted = trust.get("fitted_on") or {}
    on = ", ".join(f"{k} {v if len(str(v)) <= 48 else str(v)[:12] + '...'}"
                   for k, v in fitted.items()
                   if isinstance(v, (str, int, float)) and not isinstance(v, bool))
    level = float(trust["level"])
    return (f'<section id="trust" data-trust="1"><h2>Per-cell trust</h2><p>Cells typed among '
            f'{_e(", ".join(trust["classes"]))} carry calibrated probabilities (temperature '
            f'{trust["temperature"]:.3g}), a prediction set that holds the true type '
            f'{100 * level:.0f} % of the time on cells like the calibration cells, and an '
            f'unknown score ({_e(trust["unknown_method"])}; above '
            f'{trust["unknown_threshold"]:.3g}: a type the model was not trained on). A cell '
            f'goes to review when it is unknown or less confident than needed for '
            f'{100 * trust["target_accuracy"]:.0f} % accuracy on the cells decided alone.</p>'
            f'<p class="muted">fitted on: {_e(on or "not recorded")}</p></section>')


def _gallery_html(cells: List[CellRecord], thumbs: Dict[int, Any], limit: int) -> str:
    groups: Dict[str, List[CellRecord]] = defaultdict(list)
    for c in cells:
        groups[c.type].append(c)
    for g in groups.values():
        g.sort(key=lambda c: (-c.uncertainty, not c.needs_review, c.id))
    # the most uncertain of each type first, round robin, up to the limit
    shown: Dict[str, int] = {t: 0 for t in groups}
    budget = min(limit, len(cells))
    while budget > 0:
        moved = False
        for t, g in groups.items():
            if budget and shown[t] < len(g):
                shown[t] += 1
                budget -= 1
                moved = True
        if not moved:
            break
    parts = []
    ranks = {c.id: r for r, c in enumerate(sorted(cells, key=review_rank))}
    order = 0
    n_shown = sum(shown.values())
    if n_shown < len(cells):
        parts.append(f'<p class="muted">showing {n_shown} of {len(cells)} cells, the most '
                     f'uncertain of each type first</p>')
    for gi, t in enumerate(sorted(groups, key=lambda t: (-len(groups[t]), t))):
        g = groups[t][:shown[t]]
        if not g:
            continue
        figs = []
        for c in g:
            info = {"id": c.id, "field": c.field, "box": [round(v, 1) for v in c.box],
                    "type": c.type, "probabilities": c.probabilities,
                    "attributes": c.attributes, "uncertainty": c.uncertainty,
                    "needs_review": c.needs_review, "reason": c.reason,
                    **({"prediction_set": c.prediction_set, "unknown_score": c.unknown_score,
                        "unknown": c.unknown} if c.prediction_set is not None else {}),
                    "measurements": None if c.measurements is None else
                    {k: (round(v, 3) if isinstance(v, float) else v)
                     for k, v in c.measurements.to_dict().items() if v is not None}}
            img = thumbs.get(c.id)
            src = thumbnail_uri(img) if img is not None else ""
            p = c.probability
            cap = f"#{c.id}" + (f" {p:.2f}" if p is not None else "")
            extra = ""
            if c.prediction_set is not None:
                extra += (f'<span class="set">{{{_e(", ".join(c.prediction_set))}}}</span>')
            if c.reason:
                extra += f'<span class="why">{_e(c.reason)}</span>'
            figs.append(f'<figure class="cell" data-id="{c.id}" data-type="{_e(c.type)}" '
                        f'data-review="{int(c.needs_review)}" data-rank="{ranks[c.id]}" '
                        f'data-order="{order}" data-group="{gi}" '
                        f'data-unknown="{int(bool(c.unknown))}" title="{_e(c.reason)}" '
                        f'data-info="{_e(json.dumps(info, indent=1))}"><img alt="cell {c.id}" '
                        f'src="{src}"><figcaption>{_e(cap)}{extra}</figcaption></figure>')
            order += 1
        review = sum(c.needs_review for c in groups[t])
        parts.append(f'<div class="gallery-group" data-type="{_e(t)}"><h3>{_e(t)} '
                     f'<span class="muted">({len(groups[t])} cells, {review} to review)</span>'
                     f'</h3><div class="grid" id="g-{gi}">{"".join(figs)}</div></div>')
    parts.append('<div id="review-view" style="display:none"><h3>Cells to review, most '
                 'doubtful first <span class="muted">(unknown cells by unknown score, then '
                 'larger prediction sets, then lower confidence)</span></h3>'
                 '<div class="grid" id="review-list"></div></div>')
    return "".join(parts)


def render_report(analysis, overlays: Dict[str, str], gallery_limit: int = GALLERY_LIMIT,
                  title: str = "unihema smear analysis") -> str:
    """The page of ``analysis`` (:class:`~unihema.analysis.run.SmearAnalysis`) as a string;
    ``overlays``: field name -> overlay path relative to the page."""
    s = analysis.summary.to_dict()
    scale = analysis.scale
    if scale.um_per_px is None:
        scale_txt = "unknown"
    elif scale.source == "given":
        scale_txt = f"{scale.um_per_px:.4g} um/px (given)"
    else:
        scale_txt = (f"{scale.um_per_px:.4g} um/px estimated from {scale.n_cells} red cells "
                     f"(95 % interval {scale.low:.4g}-{scale.high:.4g})")
    banner = ""
    if not s["is_smear"]:
        banner = ('<div class="banner" id="not-a-smear">Not analysed as a smear: '
                  + _e("; ".join(s["messages"][:2])) + ". No statistics are given.</div>")
    flags = "".join(f"<li>{_e(m)}</li>" for m in s["messages"])
    smear = ("flagged for review" if (s.get("review") or {}).get("needs_review")
             else "not flagged")
    header = (f'<header><h1>{_e(title)}</h1><div><span id="n-cells">{s["n_cells"]}</span> '
              f'cells in <span id="n-fields">{s["n_fields"]}</span> field(s); '
              f'<span id="n-review">{s["needs_review"]}</span> cells to review; smear '
              f'<b id="smear-review">{smear}</b>; scale '
              f'{_e(scale_txt)}; model scale {analysis.model_um_per_px:.4g} um/px</div></header>')
    body = [_review_html(s), banner, _trust_html(getattr(analysis, "trust", None))]
    if flags:
        body.append(f'<section id="flags"><h2>Notes</h2><ul class="flags">{flags}</ul>'
                    f'</section>')
    body.append(_summary_html(s))
    if getattr(analysis, "patient", None):  # unihema analyze --patient-encoder
        body.append(patient_section.render(analysis.patient))
    legend = "".join(f'<span><i style="background:{c}"></i>{_e(n)}</span>'
                     for n, c in LINEAGE_COLOURS.items())
    fields = "".join(
        f'<div class="field" data-field="{_e(f.name)}"><h3>{_e(f.name)} '
        f'<span class="muted">{f.width}x{f.height} px, {f.n_cells} cells, {f.tiles} tiles'
        f'</span></h3>' + (f'<img alt="{_e(f.name)}" src="{_e(overlays[f.name])}">'
                           if f.name in overlays else "") + "</div>"
        for f in analysis.fields)
    body.append(f'<section id="fields"><h2>Fields</h2><div class="legend">{legend} '
                f'(thick: needs review)</div>{fields}</section>')
    body.append('<section id="gallery"><h2>Cells</h2><label><input type="checkbox" '
                'id="review-only"> needs review only</label>'
                + _gallery_html(analysis.cells, analysis.thumbnails, gallery_limit)
                + "</section>")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}'
            f'</title><meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<style>{_CSS}</style></head><body>{header}<main>{"".join(body)}</main>'
            f'<div id="zoom"><div><img alt="enlarged cell"><pre></pre><p class="muted">click '
            f'to close</p></div></div><script>{_JS}</script></body></html>')


def write_report(analysis, out: Union[str, Path], overlays: Dict[str, str],
                 gallery_limit: int = GALLERY_LIMIT) -> Path:
    """``<out>/report.html``, atomically."""
    return write_text_atomic(Path(out) / "report.html",
                             render_report(analysis, overlays, gallery_limit))
