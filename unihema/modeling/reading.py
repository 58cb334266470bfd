"""The model's reading of an image: what its own heads see, written as text.

A text answer (VQA, a filled report) about a field of view needs counts, types and places of
cells; about a single cell, its type and look. The detection, classification and morphology
heads learn those from dense supervision in a few hundred steps; a text decoder trained from
scratch does not learn to count pixels in that budget. So before the text tasks answer, the
model reads the image with its heads and hands the decoder the reading in its prompt:

* a field (longer real side > ``backbone.small_side``): the ``reading.detect`` classes are
  detected (score >= ``reading.score_threshold``); a class with one entry in ``reading.types``
  is renamed to it, a class with several has each cell cropped (``reading.crop_size``, as the
  training crops are cut) and typed by the classify head; the counts per type and broader term,
  and where single cells lie, are written by :func:`unihema.data.text.language.read_field`.
* a single cell: the classify head types it within each multi-type list of
  ``reading.types`` (a question names the lineage it asks about) and among all of them for
  its report; the morphology head gives its attribute values
  (:func:`unihema.data.text.language.read_cell`), which its report states when the best type falls
  under a ``reading.describe`` class.

Each entry carries a confidence (``"confidences"``, aligned with ``"entries"``): for a count,
the mean detection score of the objects it counts times the mean classify probability of
those typed on a crop; for a cell's type, the classify probability; for an attribute, the
morphology head's probability of the value. A low value marks an entry the heads were unsure
of; it is not a probability that a count is exact.

Training uses the annotations' reading (:func:`unihema.pipeline.mapper.truth_reading`), so the
decoder learns to answer from a correct reading; at inference it gets the model's own, so the
answer follows the image (a shuffled image changes the reading, then the answer).

The cascade runs outside the model: :class:`ReadingCascade` adds the readings to a text batch
(``batch["readings"]``, with ``batch["reading_source"]`` saying whose) before the model runs::

    cascade = ReadingCascade(model)                    # or source="truth": the annotations'
    predictions = cascade.predict(batch)               # = model.predict(cascade(batch))

A cascade caches readings by image content (a field is asked many questions); they hold for
the weights it read with: make a new cascade (or :meth:`ReadingCascade.clear`) after
training. A text batch that reaches ``model.predict`` without a cascade is read by a fresh one
(the model's own reading, no cache).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from unihema.data import vocab

from unihema.data.text import language

from unihema.tasks import prompts
from unihema.pipeline.processing import UniHemaProcessor

#: what a cascade hands the text tasks: the model's own reading or the annotations'
SOURCES = ("model", "truth")


class Reader:
    """Reads images with a model's heads; results are cached by image content (a field is
    asked many questions).

    Args:
        model: a :class:`~unihema.modeling.model.UniHema` with the heads the config needs.
        cache_size: readings kept (least recently used dropped first).
        processor: pads the crops and fields it reads (default: the model's padding, a
            multiple of 32).
    """

    def __init__(self, model, cache_size: int = 2048,
                 processor: Optional[UniHemaProcessor] = None) -> None:
        self.model = model
        self.processor = processor or UniHemaProcessor()
        self.cfg = model.config.reading
        self._cache: "OrderedDict[str, Dict[str, Any]]" = OrderedDict()
        self._cache_size = cache_size
        multi = [t for t in self.cfg.types.values() if len(t) > 1]
        self.cell_labels = list(dict.fromkeys(n for t in multi for n in t))
        self.order = list(self.cfg.detect) + [n for t in self.cfg.types.values() for n in t]

    def clear(self) -> None:
        self._cache.clear()

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, pixel_mask: torch.Tensor) -> List[Dict[str, Any]]:
        """``images [B, 3, H, W]`` in [0, 1] with ``pixel_mask [B, H, W]`` -> B readings
        ``{"entries": [(key, text), ...], "report": str, "confidences": [float, ...]}``
        (as ``mapper.truth_reading``, plus one confidence per entry)."""
        sides_h = pixel_mask.any(2).sum(1).tolist()
        sides_w = pixel_mask.any(1).sum(1).tolist()
        keys, todo = [], {}
        for b, (h, w) in enumerate(zip(sides_h, sides_w)):
            real = images[b, :, :h, :w].contiguous()
            key = hashlib.sha1(real.cpu().numpy().tobytes()).hexdigest()
            keys.append(key)
            if key not in self._cache and key not in todo:
                todo[key] = real
        readings: Dict[str, Dict[str, Any]] = {}
        if todo:
            small = self.model.trunk.small_side
            fields = {k: v for k, v in todo.items() if max(v.shape[-2:]) > small}
            cells = {k: v for k, v in todo.items() if k not in fields}
            readings.update(self._read_fields(fields))
            readings.update(self._read_cells(cells))
            for k, r in readings.items():
                self._cache[k] = r
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        out = [readings[k] if k in readings else self._cache[k] for k in keys]
        for k in keys:
            if k in self._cache:
                self._cache.move_to_end(k)
        return out

    def _stack(self, images: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """``[3, h, w]`` images padded into ``[B, 3, H, W]`` with their pixel mask, on the
        images' device (:meth:`UniHemaProcessor.pad`)."""
        return self.processor.pad(images)

    # ------------------------------------------------------------------ single cells
    def _read_cells(self, cells: Dict[str, torch.Tensor]) -> Dict[str, Dict[str, Any]]:
        if not cells:
            return {}
        keys = list(cells)
        crops = [cells[k] for k in keys]
        # one type per lineage (a question names the lineage it asks about), and the best of
        # all for the report
        multi = {g: t for g, t in self.cfg.types.items() if len(t) > 1}
        per_group = {g: self.cell_types_scored(crops, [t] * len(crops))
                     for g, t in multi.items()}
        best = self.cell_types(crops, [self.cell_labels] * len(crops))
        attrs = self.cell_attributes(crops, with_probs=True)
        out = {}
        for n, (k, lab, (a, a_prob)) in enumerate(zip(keys, best, attrs)):
            described = lab is not None and any(vocab.is_a(lab, c) for c in self.cfg.describe)
            types = {g: per_group[g][n][0] for g in multi}
            entries = language.read_cell(types, a)
            # read_cell lists the types (those given) first, then the attributes sorted
            conf = [per_group[g][n][1] for g in multi if types[g]]
            conf += [a_prob[name] for name in sorted(a)]
            out[k] = {"entries": entries, "confidences": conf,
                      "report": language.describe_cell(lab, a if described else {})
                      if lab else ""}
        return out

    def cell_types(self, crops: Sequence[torch.Tensor], candidates: Sequence[Sequence[str]],
                   chunk: int = 64) -> List[Optional[str]]:
        """The classify head's label for each crop ``[3, h, w]`` among its candidates
        (``None`` without a classify head or candidates)."""
        return [lab for lab, _ in self.cell_types_scored(crops, candidates, chunk)]

    def cell_types_scored(self, crops: Sequence[torch.Tensor],
                          candidates: Sequence[Sequence[str]], chunk: int = 64
                          ) -> List[Tuple[Optional[str], float]]:
        """:meth:`cell_types` with the label's probability (calibrated as ``classify``
        reports it): ``(label, p)``, ``(None, 1.0)`` without a classify head or candidates."""
        if "classify" not in self.model.heads or not all(candidates):
            return [(None, 1.0)] * len(crops)
        out: List[Tuple[Optional[str], float]] = []
        head = self.model.heads["classify"]
        for i in range(0, len(crops), chunk):
            part, cands = crops[i:i + chunk], [list(c) for c in candidates[i:i + chunk]]
            images, mask = self._stack(part)
            fused = self.model.encode(images, mask, [prompts.render("classify", classes=c)
                                                     for c in cands], dense=False)
            logits = head(fused, {"classes": cands})["pred_logits"]
            for c, lg in zip(cands, logits):
                p = (lg / head.temperature).softmax(-1)
                out.append((c[int(p.argmax())], float(p.max())))
        return out

    def cell_attributes(self, crops: Sequence[torch.Tensor], chunk: int = 64,
                        with_probs: bool = False) -> List[Any]:
        """Morphology attribute values of each crop (``{}`` each without a morphology head or
        with no ``reading.describe`` class); ``with_probs``: ``(values, {attribute: p})``."""
        if "morphology" not in self.model.heads or not self.cfg.describe:
            return [({}, {}) if with_probs else {} for _ in crops]
        out: List[Any] = []
        head = self.model.heads["morphology"]
        prompt = prompts.render("morphology")
        for i in range(0, len(crops), chunk):
            images, mask = self._stack(crops[i:i + chunk])
            out.extend(head.predict_attributes(self.model.encode(
                images, mask, [prompt] * len(images), dense=False), with_probs=with_probs))
        return out

    # ------------------------------------------------------------------ fields
    def _read_fields(self, fields: Dict[str, torch.Tensor]) -> Dict[str, Dict[str, Any]]:
        if not fields:
            return {}
        keys = list(fields)
        classes = list(self.cfg.detect)
        found = self.detect([fields[k] for k in keys], classes) if classes else [
            ([], [], []) for _ in keys]
        # crops of every cell whose class has several types, typed in one pass
        crops, cands, where = [], [], []
        labels_of: List[List[str]] = []
        type_probs: List[List[float]] = []
        for n, (k, (labels, boxes, _)) in enumerate(zip(keys, found)):
            labels = list(labels)
            fill = median_colour(fields[k])  # once per field, for all its crops
            for j, (lab, box) in enumerate(zip(labels, boxes)):
                types = self.cfg.types.get(lab, [])
                if len(types) == 1:
                    labels[j] = types[0]
                elif len(types) > 1:
                    crops.append(crop_cell(fields[k], box, self.cfg.crop_size, fill))
                    cands.append(types)
                    where.append((n, j))
            labels_of.append(labels)
            type_probs.append([1.0] * len(labels))
        for (n, j), (lab, p) in zip(where, self.cell_types_scored(crops, cands)):
            if lab is not None:
                labels_of[n][j] = lab
                type_probs[n][j] = p
        out = {}
        for k, labels, probs, (_, boxes, scores) in zip(keys, labels_of, type_probs, found):
            h, w = fields[k].shape[-2:]
            entries = language.read_field(labels, boxes, w, h, order=self.order)
            out[k] = {"entries": entries,
                      "confidences": [_count_confidence(key, labels, scores, probs)
                                      for key, _ in entries],
                      "report": language.report_field(labels, boxes, order=self.order)}
        return out

    def detect(self, images: Sequence[torch.Tensor], classes: List[str], chunk: int = 8
               ) -> List[Tuple[List[str], List[List[float]], List[float]]]:
        """Detections of ``classes`` on each image ``[3, h, w]`` scoring at least
        ``reading.score_threshold`` (the threshold ``UniHemaPipeline.detect`` uses by
        default, so a count read is a count detected): ``(labels, xyxy boxes in the image's
        pixels, scores)``."""
        if "detect" not in self.model.heads:
            return [([], [], []) for _ in images]
        head = self.model.heads["detect"]
        out = []
        for i in range(0, len(images), chunk):
            part = images[i:i + chunk]
            batch_images, mask = self._stack(part)
            prompt = prompts.render("detect", classes=classes)
            fused = self.model.encode(batch_images, mask, [prompt] * len(part))
            batch = {"classes": [classes] * len(part), "scales": [1.0] * len(part),
                     "orig_sizes": [tuple(p.shape[-2:]) for p in part]}
            for det in head.postprocess(head(fused, batch), batch):
                keep = det["scores"] >= self.cfg.score_threshold
                out.append(([classes[int(c)] for c in det["classes"][keep]],
                            det["boxes"][keep].tolist(), det["scores"][keep].tolist()))
        return out


class ReadingCascade:
    """What the text tasks are told is on each image, added to a batch before the model runs.

    ``source="model"``: the model's own heads read each image (:class:`Reader`, cached by
    image content); ``"truth"``: the annotations' reading the evaluation data carries
    (``batch["readings"]``, :func:`unihema.pipeline.mapper.truth_reading`), an oracle that
    scores
    the decoder apart from the heads (``unihema eval --reading truth``). Batches of other
    tasks, and of a model without ``model.reading.tasks``, pass through unchanged.

    Args:
        model: the :class:`~unihema.modeling.model.UniHema` whose text tasks read.
        source: ``"model"`` or ``"truth"``.
        processor: how the reader pads what it reads (:class:`Reader`).
        cache_size: readings kept by the reader.
    """

    def __init__(self, model, source: str = "model",
                 processor: Optional[UniHemaProcessor] = None, cache_size: int = 2048) -> None:
        if source not in SOURCES:
            raise ValueError(f"reading source must be one of {', '.join(SOURCES)}, got "
                             f"'{source}'")
        self.model = model
        self.source = source
        self.reader = Reader(model, cache_size=cache_size, processor=processor)

    def clear(self) -> None:
        """Forget the cached readings (the weights changed)."""
        self.reader.clear()

    def applies(self, batch: Mapping[str, Any]) -> bool:
        """Whether ``batch``'s task reads (``model.reading.tasks``)."""
        return batch["task"] in self.model.config.reading.tasks

    def readings(self, batch: Mapping[str, Any]) -> List[Dict[str, Any]]:
        """One reading per item (``{"entries", "report"}``, plus ``"confidences"`` from the
        model's heads).

        Raises:
            KeyError: ``source="truth"`` and the batch carries no ``readings``.
        """
        if self.source == "truth":
            if "readings" not in batch:
                raise KeyError(f"a {batch['task']} batch read with source='truth' needs "
                               f"'readings' (the annotations' reading of the evaluation data)")
            return list(batch["readings"])
        return self.reader(batch["images"], batch["pixel_mask"])

    def __call__(self, batch: Mapping[str, Any]) -> Mapping[str, Any]:
        """``batch`` with ``readings`` and ``reading_source`` set (a new dict), or ``batch``
        itself when its task does not read."""
        if not self.applies(batch):
            return batch
        return {**batch, "readings": self.readings(batch), "reading_source": self.source}

    def predict(self, batch: Mapping[str, Any]) -> List[Dict[str, Any]]:
        """``model.predict`` of the batch with its readings added."""
        return self.model.predict(self(batch))


def _count_confidence(name: str, labels: Sequence[str], scores: Sequence[float],
                      type_probs: Sequence[float]) -> float:
    """Confidence of a field entry about ``name``: mean detection score times mean type
    probability over the objects it counts (``labels`` of ``name`` or a narrower term)."""
    idx = [i for i, lab in enumerate(labels) if vocab.is_a(lab, name)]
    if not idx:
        return 1.0
    det = sum(scores[i] for i in idx) / len(idx)
    typ = sum(type_probs[i] for i in idx) / len(idx)
    return round(float(det * typ), 4)


def crop_cell(image: torch.Tensor, box: Sequence[float], side: int,
              fill: Optional[torch.Tensor] = None) -> torch.Tensor:
    """A ``side`` x ``side`` crop of ``image [3, H, W]`` centred on ``box`` (xyxy pixels).

    The window is ``max(side, 1.25 x the box's longer side)`` and is resized down to ``side``,
    as the single-cell crops of the training data are cut; parts outside the image take the
    colour ``fill [3]`` (default: the image's median colour, :func:`median_colour`).
    """
    x0, y0, x1, y1 = [float(v) for v in box]
    win = max(side, int(-(-1.25 * max(x1 - x0, y1 - y0) // 1)))
    top = int(round((y0 + y1) / 2 - win / 2))
    left = int(round((x0 + x1) / 2 - win / 2))
    _, h, w = image.shape
    fill = median_colour(image) if fill is None else fill
    out = fill.view(3, 1, 1).expand(3, win, win).clone()
    ya, xa, yb, xb = max(0, top), max(0, left), min(h, top + win), min(w, left + win)
    if yb > ya and xb > xa:
        out[:, ya - top:yb - top, xa - left:xb - left] = image[:, ya:yb, xa:xb]
    if win != side:
        out = F.interpolate(out[None], size=(side, side), mode="bilinear",
                            align_corners=False)[0]
    return out


def median_colour(image: torch.Tensor) -> torch.Tensor:
    """``[3]`` per-channel median of ``image [3, H, W]``."""
    return image.flatten(1).median(dim=1).values
