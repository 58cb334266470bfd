"""Whole-smear analysis with a model: :func:`analyze` -> :class:`SmearAnalysis`.

Inputs: one image (a path, a numpy array, a PIL image), several fields of one smear (a list,
or a folder of images: ``.png .jpg .jpeg .tif .tiff .bmp .webp``, sorted by name), or a large
tiled TIFF, read tile by tile and never decoded whole (:func:`unihema.analysis.tiles.open_source`).
16-bit, grey and RGBA images are converted window by window (alpha over white).

Steps, each timed (:attr:`SmearAnalysis.timings`, seconds):

1. **scale** -- the model sees cells at the scale it was trained at, :func:`model_um_per_px`
   (the checkpoint's ``um_per_px``; without one, the synthetic training data's scale,
   :data:`unihema.synth.layout.NATIVE_UM_PER_PX`). ``um_per_px`` gives the image's; without it
   a first pass looks for red cells on two windows of every field at each of
   :data:`SCALE_CANDIDATES` (um/px), keeps the candidate that finds most, and estimates the
   scale from their median size (:func:`unihema.analysis.scale.estimate_um_per_px`, with its
   95 % interval). An implausible or missing estimate leaves the image at the model's scale
   and the summary says the image is not taken for a smear.
2. **decode / detect** -- tiles of ``tile`` pixels at the model's scale (default the
   checkpoint's training ``image_size``), overlapping by the largest cell
   (:data:`LARGEST_CELL_UM`), read, rescaled (:func:`~unihema.analysis.tiles.rescale_tile`)
   and read by the model in batches (:class:`~unihema.analysis.reader.TileReader`).
3. **type / measure** -- each detection a tile owns (its centre in the tile's core,
   :func:`unihema.analysis.merge.owned`) is cropped, typed and measured on the tile's
   segmentation (:func:`unihema.analysis.measure.measure_cell`; pixel lengths and areas are
   converted back to the image's pixels).
4. **merge** -- detections merged across seams (:func:`unihema.analysis.merge.merge_tiles`), so
   a cell on a seam is counted once; each kept cell is assessed
   (:func:`unihema.analysis.records.assess`) and becomes a
   :class:`~unihema.analysis.records.CellRecord`.
5. **summary** -- :func:`unihema.analysis.summary.summarize` over all fields.

``detections=`` replaces the model's detector (the classify, morphology and segmentation heads
still run): a callable ``(field_name, window) -> Detections`` returning the cells seen in the
window ``(x0, y0, x1, y1)`` of the field, in the field's pixels (e.g. a synthetic field's
truth boxes clipped to the window), for tests and for boxes drawn by another tool.
"""

from __future__ import annotations

import io
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image

from unihema.analysis.measure import Measurements, measure_cell
from unihema.analysis.merge import Detections, merge_tiles, owned
from unihema.analysis.flags import FlagPolicy
from unihema.analysis.reader import Threshold, TileReader
from unihema.analysis.records import CellRecord, assess
from unihema.analysis.scale import ScaleEstimate, diameters_from_boxes, estimate_um_per_px
from unihema.analysis.summary import SmearSummary, lineage_of, summarize
from unihema.analysis.tiles import (Box, boxes_to_global, grid_for_model, open_source,
                                    rescale_tile)
from unihema.synth.layout import NATIVE_UM_PER_PX

#: the largest cell to expect, micrometres: the least overlap between tiles
LARGEST_CELL_UM = 20.0
#: image scales (um/px) the first pass tries when the scale is not given
SCALE_CANDIDATES = (0.05, 0.1, 0.2, 0.4, 0.8)
#: windows per field the first pass reads at each candidate scale
SCALE_WINDOWS = 2
#: longer side of a field's preview (the overlay), pixels
PREVIEW_SIDE = 1600
#: side of a cell's picture for the gallery (pixels): a window of :data:`THUMB_MARGIN` x the
#: cell's longer side, cut from the image at its own resolution, centred on the cell
THUMB_SIDE = 64
THUMB_MARGIN = 1.5
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")

Detector = Callable[[str, Box], Detections]


def trust_fields(verdict: Optional[Any]) -> Tuple[Optional[List[str]], Optional[float],
                                                   Optional[bool]]:
    """``(prediction_set, unknown_score, unknown)`` of a cell's trust verdict (``None`` s
    without one)."""
    if verdict is None:
        return None, None, None
    score = float(verdict.unknown_score)
    return (list(verdict.prediction_set), round(score, 4) if math.isfinite(score) else None,
            bool(verdict.unknown))


def trust_info(state: Optional[Any]) -> Optional[Dict[str, Any]]:
    """What the page and ``summary.json`` say of the trust state (``None`` without one):
    its classes, set level, unknown method and threshold, referral target and what it was
    fitted on."""
    if state is None:
        return None
    return {"classes": list(state.classes), "level": state.level,
            "temperature": float(state.temperature),
            "unknown_method": state.unknown_method,
            "unknown_threshold": float(state.unknown_threshold),
            "target_accuracy": float(state.target_accuracy),
            "fitted_on": dict(state.fitted_on)}


@dataclass
class FieldResult:
    """One field (an image or a scan): ``name``, size in pixels, the scale factor applied
    (image px -> model px), tiles read, cells kept, and ``preview``: the field downscaled by
    ``preview_scale`` (``uint8 [h, w, 3]``) for overlays."""

    name: str
    width: int
    height: int
    factor: float
    tiles: int
    n_cells: int
    preview: Optional[np.ndarray] = None
    preview_scale: float = 1.0


@dataclass
class SmearAnalysis:
    """The analysis of one smear: ``cells`` (:class:`CellRecord`), ``summary``
    (:class:`SmearSummary`), ``fields``, the ``scale`` used (given or estimated, with its
    interval), ``model_um_per_px``, ``timings`` per stage in seconds (``total`` included) and
    ``thumbnails``: cell id -> its picture (:func:`cell_picture`) as JPEG bytes; ``trust``:
    the trust state the cells were judged by (:func:`trust_info`), ``None`` without one."""

    cells: List[CellRecord]
    summary: SmearSummary
    fields: List[FieldResult]
    scale: ScaleEstimate
    model_um_per_px: float
    timings: Dict[str, float]
    thumbnails: Dict[int, bytes] = field(default_factory=dict, repr=False)
    trust: Optional[Dict[str, Any]] = None

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready: the summary with the scale, fields and timings (cells apart)."""
        return {"summary": self.summary.to_dict(), "scale": self.scale.to_dict(),
                "trust": self.trust,
                "model_um_per_px": self.model_um_per_px,
                "fields": [{"name": f.name, "width": f.width, "height": f.height,
                            "factor": f.factor, "tiles": f.tiles, "cells": f.n_cells}
                           for f in self.fields],
                "timings": {k: round(v, 4) for k, v in self.timings.items()}}


class _Clock:
    def __init__(self) -> None:
        self.t: Dict[str, float] = {}

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.t[stage] = self.t.get(stage, 0.0) + now - since
        return now


# ----------------------------------------------------------------------------- inputs
def resolve_inputs(inputs: Any) -> List[Tuple[str, Any]]:
    """``[(field name, path or image)]`` of one image, a folder or a list of either."""
    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    out: List[Tuple[str, Any]] = []
    for n, item in enumerate(items):
        if isinstance(item, (str, Path)):
            p = Path(item)
            if p.is_dir():
                files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
                if not files:
                    raise ValueError(f"{p}: no images in the folder (expected "
                                     f"{' '.join(IMAGE_SUFFIXES)})")
                out += [(f.name, f) for f in files]
            elif not p.exists():
                raise FileNotFoundError(f"{p}: no such image or folder")
            else:
                out.append((p.name, p))
        elif isinstance(item, (np.ndarray, Image.Image)):
            out.append((f"field-{n + 1}", item))
        else:
            raise TypeError(f"input {n}: expected a path, a folder, a numpy array or a PIL "
                            f"image, got {type(item).__name__}")
    if not out:
        raise ValueError("analyze: no input")
    seen: Dict[str, int] = {}
    named = []
    for name, item in out:  # distinct names: a field's name identifies its cells
        seen[name] = seen.get(name, 0) + 1
        named.append((name if seen[name] == 1 else f"{name}#{seen[name]}", item))
    return named


def model_um_per_px(pipe) -> float:
    """The scale the model was trained at: the checkpoint's ``um_per_px``, else
    :data:`~unihema.synth.layout.NATIVE_UM_PER_PX` (the synthetic training fields')."""
    value = (getattr(pipe, "meta", None) or {}).get("um_per_px")
    return float(value) if value else NATIVE_UM_PER_PX


def _as_pipeline(pipe):
    """``pipe`` itself when it is a loaded pipeline (a ``model`` and a ``processor``, as
    :class:`unihema.api.UniHemaPipeline` has); this layer does not load models."""
    if hasattr(pipe, "model") and hasattr(pipe, "processor"):
        return pipe
    raise TypeError(f"analyze: expected a loaded pipeline (UniHemaPipeline.from_pretrained("
                    f"folder), then pipe.analyze(...)), got {type(pipe).__name__}")


def cell_picture(image: np.ndarray, box: Sequence[float], side: int = THUMB_SIDE,
                 margin: float = THUMB_MARGIN) -> np.ndarray:
    """``uint8 [side, side, 3]``: the square window of ``margin`` x the longer side of ``box``
    (xyxy pixels of ``image [h, w, 3]``) centred on it, white beyond the image's edge."""
    x0, y0, x1, y1 = (float(v) for v in box)
    win = max(4, int(round(margin * max(x1 - x0, y1 - y0))))
    left, top = int(round((x0 + x1 - win) / 2)), int(round((y0 + y1 - win) / 2))
    out = np.full((win, win, 3), 255, np.uint8)
    h, w = image.shape[:2]
    ya, xa, yb, xb = max(0, top), max(0, left), min(h, top + win), min(w, left + win)
    if yb > ya and xb > xa:
        out[ya - top:yb - top, xa - left:xb - left] = image[ya:yb, xa:xb]
    resample = Image.BOX if win > side else Image.BILINEAR
    return np.asarray(Image.fromarray(out).resize((side, side), resample))


def jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    """``uint8 [h, w, 3]`` as JPEG bytes (a gallery picture: ~3 kB instead of 12 kB held
    per cell, so a scan's pictures fit in memory)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).float() / 255.0


def _read_windows(reader: TileReader, detector: Optional[Detector], name: str,
                  windows: Sequence[Box], images: Sequence[np.ndarray],
                  factors: Sequence[Tuple[float, float]]) -> List[Detections]:
    """Detections (global pixels) of each window; with ``detector`` the model only segments."""
    if detector is not None:
        return [detector(name, w) for w in windows]
    out = []
    readings = reader.read_tiles([_tensor(i) for i in images], segment=False)
    for w, fxy, r in zip(windows, factors, readings):
        out.append(Detections(boxes_to_global(r.boxes, w, fxy),
                              np.asarray(r.labels, dtype=object), r.scores))
    return out


# ----------------------------------------------------------------------------- scale
def estimate_scale(sources, reader: TileReader, detector: Optional[Detector], tile: int,
                   model_um: float) -> ScaleEstimate:
    """The first pass: red cells on up to :data:`SCALE_WINDOWS` windows of each field at every
    :data:`SCALE_CANDIDATES` scale; the candidate that finds most red cells gives the
    diameters the estimate rests on (module docstring)."""
    best: Tuple[int, np.ndarray] = (-1, np.zeros(0))
    for cand in SCALE_CANDIDATES:
        factor = cand / model_um
        diam = []
        for name, src in sources:
            grid = grid_for_model(src.width, src.height, tile, 0, factor)
            picks = np.unique(np.linspace(0, len(grid) - 1, min(SCALE_WINDOWS, len(grid)))
                              .round().astype(int))
            wins = [grid[int(i)].box for i in picks]
            imgs, fxy = [], []
            for w in wins:
                im, f = rescale_tile(src.read(w), factor) if detector is None else (None, None)
                imgs.append(im)
                fxy.append(f)
            for d in _read_windows(reader, detector, name, wins, imgs, fxy):
                red = np.array([lineage_of(str(lab)) == "red blood cell" for lab in d.labels],
                               bool)
                diam.append(diameters_from_boxes(d.boxes[red]) if red.any() else np.zeros(0))
        diam_all = np.concatenate(diam) if diam else np.zeros(0)
        if len(diam_all) > best[0]:
            best = (len(diam_all), diam_all)
        if detector is not None:
            break  # the injected boxes do not depend on the scale tried
    return estimate_um_per_px(best[1])


# ----------------------------------------------------------------------------- the analysis
def _to_image_px(m: Measurements, factor: float, has_scale: bool) -> Measurements:
    """Measurements taken at the model's scale, in the image's pixels."""
    d = m.to_dict()
    for k in ("eq_diameter_px", "perimeter_px"):
        d[k] = d[k] / factor
    d["area_px"] = d["area_px"] / factor ** 2
    if not has_scale:
        d.update(area_um2=None, eq_diameter_um=None, perimeter_um=None)
    return Measurements(**d)


def _field(name: str, src, reader: TileReader, detector: Optional[Detector], factor: float,
           tile: int, overlap: int, model_um: float, has_scale: bool, clock: _Clock,
           bar, first_id: int, thumbs: Dict[int, bytes]
           ) -> Tuple[List[CellRecord], FieldResult]:
    grid = grid_for_model(src.width, src.height, tile, overlap, factor)
    slack = grid.overlap / 4.0
    ps = min(1.0, PREVIEW_SIDE / max(src.width, src.height))
    preview = np.zeros((max(1, round(src.height * ps)), max(1, round(src.width * ps)), 3),
                       np.uint8)
    per_tile: List[Detections] = []
    info: List[Tuple[Any, Optional[Measurements], bytes]] = []
    tiles = grid.tiles()
    for s in range(0, len(tiles), reader.batch_size):
        t0 = time.perf_counter()
        part = tiles[s:s + reader.batch_size]
        raw = [src.read(t.box) for t in part]
        for t, im in zip(part, raw):
            x0, y0, x1, y1 = t.box
            px0, py0 = round(x0 * ps), round(y0 * ps)
            pw, ph = max(1, round(x1 * ps) - px0), max(1, round(y1 * ps) - py0)
            small = np.asarray(Image.fromarray(im).resize((pw, ph), Image.BILINEAR))
            preview[py0:py0 + ph, px0:px0 + pw] = small[:preview.shape[0] - py0,
                                                        :preview.shape[1] - px0]
        scaled = [rescale_tile(im, factor) for im in raw]
        t0 = clock.add("decode", t0)
        tensors = [_tensor(im) for im, _ in scaled]
        readings = reader.read_tiles(tensors)  # segmentation (and detection without detector)
        dets = _read_windows(reader, detector, name, [t.box for t in part],
                             [im for im, _ in scaled], [f for _, f in scaled]) \
            if detector is not None else [
                Detections(boxes_to_global(r.boxes, t.box, f),
                           np.asarray(r.labels, dtype=object), r.scores)
                for t, r, (_, f) in zip(part, readings, scaled)]
        t0 = clock.add("detect", t0)
        for t, d, r, ten, im, (_, (fx, fy)) in zip(part, dets, readings, tensors, raw,
                                                    scaled):
            keep = np.flatnonzero(owned(d.boxes, t, slack)) if len(d) else np.zeros(0, int)
            d = Detections(d.boxes[keep], d.labels[keep], d.scores[keep])
            per_tile.append(d)
            if not len(d):
                continue
            local = d.boxes.copy()
            local[:, [0, 2]] = (local[:, [0, 2]] - t.box[0]) * fx
            local[:, [1, 3]] = (local[:, [1, 3]] - t.box[1]) * fy
            crops = reader.crops(ten, local)
            typed = reader.type_cells(crops, [str(lab) for lab in d.labels])
            t1 = clock.add("type", t0)
            for box, gbox, lab, cell in zip(local, d.boxes, d.labels, typed):
                mask, nucleus = reader.cell_mask(r.mask, box, lineage_of(str(lab)))
                m = None if mask is None else _to_image_px(
                    measure_cell(mask, model_um, nucleus), factor, has_scale)
                x0, y0 = t.box[:2]
                thumb = jpeg(cell_picture(im, (gbox[0] - x0, gbox[1] - y0, gbox[2] - x0,
                                               gbox[3] - y0)))
                info.append((cell, m, thumb))
            t0 = clock.add("measure", t1)
        if bar is not None:
            bar.update(len(part))
    t0 = time.perf_counter()
    merged = merge_tiles(grid, per_tile, slack=slack)
    cells = []
    for k in range(len(merged)):
        cell, m, thumb = info[int(merged.index[k])]
        lineage = lineage_of(cell.type)
        if lineage == "other":
            lineage = lineage_of(str(merged.labels[k]))
        unc, review, reason = assess(cell.probabilities, cell.type, cut=bool(merged.cut[k]),
                                     trust=cell.trust)
        cid = first_id + k
        cells.append(CellRecord(
            cid, name, tuple(round(float(v), 2) for v in merged.boxes[k]), lineage, cell.type,
            cell.probabilities, round(float(merged.scores[k]), 4), cell.attributes, m,
            round(unc, 4), review, reason, *trust_fields(cell.trust)))
        thumbs[cid] = thumb
    clock.add("merge", t0)
    return cells, FieldResult(name, src.width, src.height, factor, len(grid), len(cells),
                              preview, ps)


def analyze(pipe, inputs, *, um_per_px: Optional[float] = None,
            tile: Optional[int] = None, progress: bool = True, batch_size: int = 4,
            min_score: Optional[Threshold] = None, detections: Optional[Detector] = None,
            flags: Optional[FlagPolicy] = None) -> SmearAnalysis:
    """Analyse one smear (module docstring) with ``pipe`` (a loaded
    :class:`unihema.api.UniHemaPipeline`; ``pipe.analyze(...)`` calls this): ``inputs``
    one image, a folder or a list of fields, or a tiled TIFF; ``um_per_px`` the image's
    scale (estimated when ``None``);
    ``tile`` the tile side at the model's scale (default the training ``image_size``);
    ``min_score`` the detection threshold (default the model's ``reading.score_threshold``),
    one for all classes or per detected class (``{"platelet": 0.3}``, the others keeping the
    default); ``detections`` an injected detector; ``flags`` the smear-level review rules
    (default :data:`unihema.analysis.flags.DEFAULT_POLICY`). Every cell is counted once across
    tile seams. With a trust state (``pipe.trust``) the cells it covers carry its verdict
    (:mod:`unihema.analysis.records`).

    Raises:
        ImageTooLargeError: a file too large to decode whole that is not a tiled TIFF.
        ImageReadError, FileNotFoundError, ValueError: unreadable or empty inputs.
    """
    clock = _Clock()
    start = t0 = time.perf_counter()
    pipe = _as_pipeline(pipe)
    reader = TileReader.from_pipeline(pipe, min_score, batch_size)
    model_um = model_um_per_px(pipe)
    tile = int(tile or pipe.image_size)
    overlap = min(tile // 2, int(math.ceil(LARGEST_CELL_UM / model_um)))
    named = resolve_inputs(inputs)
    sources = [(name, open_source(item)) for name, item in named]
    t0 = clock.add("decode", t0)
    try:
        if um_per_px is not None:
            scale = ScaleEstimate.given(float(um_per_px))
        else:
            scale = estimate_scale(sources, reader, detections, tile, model_um)
        usable = scale.um_per_px is not None and scale.plausible
        factor = scale.um_per_px / model_um if usable else 1.0
        t0 = clock.add("scale", t0)
        bar = None
        if progress:
            from tqdm import tqdm

            total = sum(len(grid_for_model(s.width, s.height, tile, overlap, factor))
                        for _, s in sources)
            bar = tqdm(total=total, desc="analyse", unit="tile", file=sys.stderr,
                       leave=False)
        cells: List[CellRecord] = []
        fields: List[FieldResult] = []
        thumbs: Dict[int, bytes] = {}
        for name, src in sources:
            if bar is not None:
                bar.set_postfix_str(name[-30:])
            c, f = _field(name, src, reader, detections, factor, tile, overlap, model_um,
                          usable, clock, bar, len(cells) + 1, thumbs)
            cells += c
            fields.append(f)
        if bar is not None:
            bar.close()
    finally:
        for _, src in sources:
            src.close()
    t0 = time.perf_counter()
    summary = summarize(cells, n_fields=len(fields), scale=scale, policy=flags)
    if scale.um_per_px is None and not cells:
        summary.messages.append("the scale could not be estimated: no red cells were found")
    clock.add("summary", t0)
    clock.t["total"] = time.perf_counter() - start
    return SmearAnalysis(cells, summary, fields, scale, model_um, clock.t, thumbs,
                         trust_info(reader.trust))


def iter_field_cells(analysis: SmearAnalysis) -> Iterable[Tuple[FieldResult, List[CellRecord]]]:
    """Each field with its cells."""
    by: Dict[str, List[CellRecord]] = {}
    for c in analysis.cells:
        by.setdefault(c.field, []).append(c)
    for f in analysis.fields:
        yield f, by.get(f.name, [])
