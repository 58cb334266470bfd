"""The model's part of a smear analysis: what its heads see on a tile and on a cell crop.

:class:`TileReader` wraps a :class:`~unihema.modeling.model.UniHema` and its settings (those of
:class:`~unihema.api.pipeline.UniHemaPipeline`) and reads, at the model's scale:

* **tiles** (:meth:`TileReader.read_tiles`): one trunk pass per batch of tiles feeds both the
  detection head (the classes of ``model.reading.detect``, else the checkpoint's detection
  classes; boxes scoring at least the pipeline's threshold) and, when the model has one, the
  segmentation head (the checkpoint's segmentation classes, index 0 background);
* **cells** (:meth:`TileReader.type_cells`): the crop of each detected cell, cut as the
  training crops are (:func:`unihema.modeling.reading.crop_cell`, ``model.reading.crop_size``),
  typed by the classify head among its lineage's types (``model.reading.types``) with the
  probability of every candidate (softmax of the logits over the head's calibrated
  temperature, as ``classify`` reports them), and, for the ``model.reading.describe`` classes,
  the morphology head's attribute values with their probabilities;
* **trust** (with a trust state, :mod:`unihema.trust`): a cell whose candidate types are the
  state's classes (as a set; the prompt lists them in the reader's order, the logits are put
  in the state's) gets the state's verdict from its raw logits and its unit-norm embedding
  (:attr:`CellReading.trust`); other cells get none (the state was not fitted on them).

Images are ``float [3, h, w]`` tensors in ``[0, 1]``; boxes ``xyxy`` pixels of the tile they
were found on. This is how :mod:`unihema.modeling.reading` reads a field, kept per cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from unihema.data import vocab
from unihema.tasks import prompts
from unihema.modeling.reading import Reader, crop_cell, median_colour

#: segmentation classes that make up a cell of each lineage (the nucleus of a white cell is
#: measured as its own mask)
CELL_PIXELS = {"red blood cell": ("red blood cell", "malaria parasite"),
               "white blood cell": ("nucleus", "cytoplasm"),
               "platelet": ("platelet",), "malaria parasite": ("malaria parasite",)}


#: a detection threshold: one for every class, or class -> threshold
Threshold = Union[float, Mapping[str, float]]


def parse_min_score(text: str) -> Threshold:
    """``"0.3"`` -> 0.3; ``"white blood cell=0.2,platelet=0.3"`` -> a threshold per detected
    class (the others keep the model's); a ``ValueError`` naming the bad part otherwise."""
    text = str(text).strip()
    if "=" not in text:
        return float(text)
    out: Dict[str, float] = {}
    for part in text.split(","):
        name, eq, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--min-score: {part.strip()!r} is not CLASS=SCORE") from None
        if not eq or not name.strip():
            raise ValueError(f"--min-score: {part.strip()!r} is not CLASS=SCORE")
    return out


@dataclass
class TileReading:
    """What the heads found on one tile: ``labels`` (detected class names), ``boxes [N, 4]``
    xyxy in the tile's pixels, ``scores [N]``, and ``mask`` (``int64 [h, w]`` indices into
    :attr:`TileReader.segment_classes`, or ``None`` without a segmentation head)."""

    labels: List[str]
    boxes: np.ndarray
    scores: np.ndarray
    mask: Optional[np.ndarray] = None


@dataclass
class CellReading:
    """A cell's type, the probability of each candidate type, and its attributes with their
    probabilities (empty for cells not described); ``trust``: the trust state's verdict
    (``CellTrust``), ``None`` without a state or for a cell it does not cover."""

    type: str
    probabilities: Dict[str, float]
    attributes: Dict[str, str] = field(default_factory=dict)
    attribute_confidence: Dict[str, float] = field(default_factory=dict)
    trust: Optional[Any] = None


class TileReader:
    """Reads tiles and cell crops with a model (module docstring).

    Args:
        model: the model (in eval mode, on ``device``).
        detect_classes: classes to detect; default ``model.reading.detect``.
        segment_classes: segmentation classes, ``"background"`` first.
        score_threshold: the least detection score kept: one for all classes, or a mapping
            class -> threshold (classes it leaves out keep ``default_threshold``).
        batch_size: tiles per forward pass; crops go 64 at a time.
        default_threshold: the threshold of classes a mapping leaves out (default the
            model's ``reading.score_threshold``).
        trust: a trust state (``pipe.trust``), or None.
    """

    def __init__(self, model, detect_classes: Sequence[str], segment_classes: Sequence[str],
                 score_threshold: Threshold, batch_size: int = 4,
                 default_threshold: Optional[float] = None, trust: Optional[Any] = None
                 ) -> None:
        self.model = model
        self.cfg = model.config.reading
        self.detect_classes = list(self.cfg.detect or detect_classes)
        self.segment_classes = list(segment_classes)
        if isinstance(score_threshold, Mapping):
            unknown = sorted(set(score_threshold) - set(self.detect_classes))
            if unknown:
                raise ValueError(f"score thresholds for {unknown}: the model detects "
                                 f"{self.detect_classes}")
            base = float(self.cfg.score_threshold if default_threshold is None
                         else default_threshold)
            self.thresholds = {c: float(score_threshold.get(c, base))
                               for c in self.detect_classes}
        else:
            self.thresholds = {c: float(score_threshold) for c in self.detect_classes}
        self.score_threshold = min(self.thresholds.values(), default=0.0)
        self.batch_size = max(1, int(batch_size))
        self.crop_size = int(self.cfg.crop_size)
        self._reader = Reader(model)
        self.device = next(model.parameters()).device
        #: the trust state (``unihema.trust.TrustState``) or None
        self.trust = trust

    @classmethod
    def from_pipeline(cls, pipe, min_score: Optional[Threshold] = None,
                      batch_size: int = 4) -> "TileReader":
        return cls(pipe.model, pipe.classes["detect"], pipe.classes["segment"],
                   pipe.score_threshold if min_score is None else min_score, batch_size,
                   default_threshold=pipe.score_threshold, trust=getattr(pipe, "trust", None))

    def covered(self, candidates: Sequence[str]) -> bool:
        """Whether the trust state judges cells typed among ``candidates``."""
        return self.trust is not None and set(candidates) == set(self.trust.classes) \
            and len(candidates) == len(self.trust.classes)

    def types_of(self, label: str) -> List[str]:
        """The types a detected ``label`` is chosen among (``[label]`` when none is set)."""
        return list(self.cfg.types.get(label) or [label])

    # ------------------------------------------------------------------ tiles
    @torch.no_grad()
    def read_tiles(self, images: Sequence[torch.Tensor], segment: bool = True
                   ) -> List[TileReading]:
        """Detections (and, with ``segment``, the segmentation) of each tile ``[3, h, w]``."""
        heads = self.model.heads
        out: List[TileReading] = []
        for i in range(0, len(images), self.batch_size):
            part = [im.to(self.device) for im in images[i:i + self.batch_size]]
            x, mask = self._reader._stack(part)
            visual = self.model.encode_image(x, mask, dense=True)
            n = len(part)
            dets = [([], np.zeros((0, 4)), np.zeros(0))] * n
            if "detect" in heads and self.detect_classes:
                head = heads["detect"]
                batch = {"classes": [self.detect_classes] * n, "scales": [1.0] * n,
                         "orig_sizes": [tuple(p.shape[-2:]) for p in part]}
                fused = self.model.fuse(visual, mask, [prompts.render(
                    "detect", classes=self.detect_classes)] * n)
                dets = []
                least = torch.tensor([self.thresholds[c] for c in self.detect_classes])
                for det in head.postprocess(head(fused, batch), batch):
                    keep = det["scores"] >= least.to(det["scores"].device)[det["classes"]]
                    dets.append(([self.detect_classes[int(c)] for c in det["classes"][keep]],
                                 det["boxes"][keep].cpu().numpy().reshape(-1, 4),
                                 det["scores"][keep].cpu().numpy()))
            masks: List[Optional[np.ndarray]] = [None] * n
            if segment and "segment" in heads and len(self.segment_classes) > 1:
                head = heads["segment"]
                batch = {"classes": [self.segment_classes] * n}
                fused = self.model.fuse(visual, mask, [prompts.render(
                    "segment", classes=self.segment_classes)] * n)
                masks = [m["mask"][:p.shape[1], :p.shape[2]].cpu().numpy()
                         for m, p in zip(head.postprocess(head(fused, batch), batch), part)]
            out += [TileReading(list(d[0]), d[1], d[2], m) for d, m in zip(dets, masks)]
        return out

    # ------------------------------------------------------------------ cells
    def crops(self, tile: torch.Tensor, boxes: np.ndarray, side: Optional[int] = None
              ) -> List[torch.Tensor]:
        """The crop of each box (tile pixels) of ``tile [3, h, w]``, ``side`` pixels (default
        ``crop_size``, what the classify head reads)."""
        fill = median_colour(tile)
        return [crop_cell(tile, b, side or self.crop_size, fill) for b in np.asarray(boxes)]

    @torch.no_grad()
    def type_cells(self, crops: Sequence[torch.Tensor], labels: Sequence[str],
                   chunk: int = 64) -> List[CellReading]:
        """Type and attributes of each crop ``[3, s, s]`` of a detected ``labels`` cell."""
        out = [CellReading(self.types_of(lab)[0], {self.types_of(lab)[0]: 1.0})
               for lab in labels]
        multi = [i for i, lab in enumerate(labels) if len(self.types_of(lab)) > 1]
        if multi and "classify" in self.model.heads:
            head = self.model.heads["classify"]
            for s in range(0, len(multi), chunk):
                idx = multi[s:s + chunk]
                cands = [self.types_of(labels[i]) for i in idx]
                images, mask = self._reader._stack([crops[i].to(self.device) for i in idx])
                fused = self.model.encode(images, mask, [prompts.render("classify", classes=c)
                                                         for c in cands], dense=False)
                res = head(fused, {"classes": cands})
                for i, c, lg in zip(idx, cands, res.logits):
                    p = (lg / head.temperature).softmax(-1).tolist()
                    probs = {name: round(float(v), 6) for name, v in zip(c, p)}
                    out[i] = CellReading(max(probs, key=probs.get), probs)
                self._judge([out[i] for i in idx], cands, res.logits, res.embedding)
        described = [i for i, lab in enumerate(labels)
                     if any(vocab.is_a(lab, c) or lab == c for c in self.cfg.describe)]
        if described:
            attrs = self._reader.cell_attributes([crops[i].to(self.device) for i in described],
                                                 with_probs=True)
            for i, (values, conf) in zip(described, attrs):
                out[i].attributes = dict(values)
                out[i].attribute_confidence = {k: round(float(v), 4) for k, v in conf.items()}
        return out

    def _judge(self, readings: Sequence[CellReading], cands: Sequence[Sequence[str]],
               logits: Sequence[torch.Tensor], embedding: Optional[torch.Tensor]) -> None:
        """The trust state's verdict on the covered cells (:meth:`covered`), in place: the
        calibrated probabilities replace the head's, the type is the state's label."""
        rows = [k for k, c in enumerate(cands) if self.covered(c)]
        if not rows:
            return
        order = list(self.trust.classes)
        lg = torch.stack([logits[k].float().cpu()[[list(cands[k]).index(n) for n in order]]
                          for k in rows])
        emb = None if embedding is None else embedding[rows].float().cpu()
        for k, verdict in zip(rows, self.trust.assess(lg, emb)):
            r = readings[k]
            r.trust = verdict
            r.probabilities = {n: round(float(verdict.probs[n]), 6) for n in order}
            r.type = verdict.label

    def cell_mask(self, mask: Optional[np.ndarray], box: Sequence[float], lineage: str
                  ) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """The cell's pixels within its box (segmentation classes of its lineage inside the
        ellipse inscribed in the box, so a neighbour's pixels stay out) and its nucleus, both
        bool ``[h, w]`` over the box; ``(None, None)`` without a mask or with no pixel."""
        if mask is None:
            return None, None
        h, w = mask.shape
        x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
        x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
        if x1 <= x0 or y1 <= y0:
            return None, None
        sub = mask[y0:y1, x0:x1]
        yy, xx = np.mgrid[y0:y1, x0:x1] + 0.5
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        rx, ry = max((box[2] - box[0]) / 2, 0.5), max((box[3] - box[1]) / 2, 0.5)
        inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        names = CELL_PIXELS.get(lineage, (lineage,))
        ids = [self.segment_classes.index(n) for n in names if n in self.segment_classes]
        cell = np.isin(sub, ids) & inside
        if not cell.any():
            return None, None
        nucleus = None
        if lineage == "white blood cell" and "nucleus" in self.segment_classes:
            nucleus = (sub == self.segment_classes.index("nucleus")) & inside
        return cell, nucleus
