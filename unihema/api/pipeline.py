"""One image (a path, a PIL image or an ``[H, W, 3]`` uint8 array) in, task results out.

Results are in the coordinates of the original image: boxes are absolute ``xyxy`` pixels of
the image as given, masks have its height and width.

Every result is a dict with ``"warnings"``: ``[{"code": str, "message": str}]``, the reasons
not to trust it as it stands (:data:`unihema.api.checks.WARNINGS`, docs/model.md "Warnings").
Text answers carry ``"confidence"``: the probability the decoder gave the answer it wrote
(the product of its token probabilities, in [0, 1]).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from unihema.api import checks
from unihema.data import image_stats, language, prompts
from unihema.data.collate import collate
from unihema.data.io import read_image
from unihema.data.mapper import resized_side
from unihema.data.transforms import resize_longest
from unihema.modeling.model import UniHema

ImageLike = Union[str, Path, Image.Image, np.ndarray]

#: Class lists used when a checkpoint does not record its own.
DEFAULT_CLASSES = {
    "detect": ["red blood cell", "white blood cell", "platelet", "ring form"],
    "segment": ["background", "red blood cell", "nucleus", "cytoplasm", "platelet",
                "malaria parasite"],
}


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """``uint8 [H, W, 3]`` from a path (any format ``read_image`` decodes), PIL or numpy."""
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return np.array(image.convert("RGB"))  # a writable copy (torch.from_numpy needs one)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4) or arr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 [H, W, 3] array, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr[..., :3])


class UniHemaPipeline:
    """Wraps a :class:`UniHema` model with the preprocessing it was trained with."""

    def __init__(self, model: UniHema, *, image_size: int = 256, upscale: bool = False,
                 classes: Optional[Dict[str, List[str]]] = None, crop_size: int = 0,
                 meta: Optional[Dict[str, Any]] = None) -> None:
        self.model = model.eval()
        self.image_size = image_size
        self.upscale = upscale
        #: the single-cell image of classify / morphology is resized to this side (0: native)
        self.crop_size = int(crop_size)
        self.classes = {**DEFAULT_CLASSES, **(classes or {})}
        #: the checkpoint's metadata (``image_stats``: what the training images looked like)
        self.meta = dict(meta or {})

    @classmethod
    def from_pretrained(cls, directory: Union[str, Path]) -> "UniHemaPipeline":
        model = UniHema.from_pretrained(directory)
        meta = getattr(model, "checkpoint_meta", {})
        return cls(model, image_size=int(meta.get("image_size", 256)),
                   upscale=bool(meta.get("upscale", False)), classes=meta.get("classes"),
                   crop_size=int(meta.get("crop_size", 0) or 0), meta=meta)

    @property
    def score_threshold(self) -> float:
        """The one detection threshold: what :meth:`detect` keeps by default and what the
        reading counts (``model.reading.score_threshold``), so a count in an answer is the
        count :meth:`detect` finds."""
        return float(self.model.config.reading.score_threshold)

    # ------------------------------------------------------------------ plumbing
    def _prepare(self, image: ImageLike, task: str, prompt: str, **item: Any
                 ) -> Tuple[Dict[str, Any], List[Dict[str, str]]]:
        """The one-item batch of ``image`` for ``task`` and the warnings about the input."""
        arr = to_rgb_array(image)
        h, w = arr.shape[:2]
        tensor = torch.from_numpy(arr).permute(2, 0, 1).contiguous()
        scale = 1.0
        # classify and describe take a single-cell image
        single = task in ("classify", "morphology")
        side = resized_side(max(h, w), single, self.image_size, self.upscale, self.crop_size)
        if side != max(h, w):
            tensor, _, _, scale = resize_longest(tensor, np.zeros((0, 4), np.float32), None,
                                                 side)
        # the reading (and so a text answer) takes a small image for a single cell
        kind = "cell" if single or side <= self.model.trunk.small_side else "field"
        warnings = checks.image_warnings(
            h, w, side, self.meta, kind,
            image_stats.compare(arr, self.meta.get("image_stats"), kind))
        batch = collate([{"image": tensor.float() / 255.0, "task": task, "key": "input",
                          "orig_size": (h, w), "scale": float(scale), "prompt": prompt,
                          **item}])
        return batch, warnings

    def _batch(self, image: ImageLike, task: str, prompt: str, **item: Any) -> Dict[str, Any]:
        return self._prepare(image, task, prompt, **item)[0]

    # ------------------------------------------------------------------ tasks
    def ask(self, image: ImageLike, question: str) -> Dict[str, Any]:
        """``{"answer": str, "confidence": float, "warnings": [...]}``: a free-text answer
        to ``question`` about the image and the probability the model gave it. Warns on a
        question of a kind it was not trained on and on an answer of the wrong kind."""
        if not isinstance(question, str):
            raise TypeError(f"question must be a string, got {type(question).__name__} "
                            f"{question!r}")
        batch, warnings = self._prepare(image, "vqa", prompts.render("vqa", question=question),
                                        question=question)
        pred = self.model.predict(batch)[0]
        warnings += checks.question_warnings(question)
        warnings += checks.answer_warnings(question, pred["text"])
        return {"answer": pred["text"], "confidence": round(pred["confidence"], 4),
                "warnings": warnings}

    def detect(self, image: ImageLike, classes: Optional[Sequence[str]] = None,
               min_score: Optional[float] = None) -> Dict[str, Any]:
        """``{"objects": [{"box": [x0, y0, x1, y1], "label", "score"}], "counts": {label:
        n}, "warnings": [...]}``; ``min_score`` defaults to :attr:`score_threshold`."""
        names, warnings = checks.check_labels(classes if classes is not None
                                              else self.classes["detect"], "classes")
        threshold = self.score_threshold if min_score is None else float(min_score)
        batch, image_warnings = self._prepare(
            image, "detect", prompts.render("detect", classes=names), classes=names)
        pred = self.model.predict(batch)[0]
        scale = batch["scales"][0]
        out = []
        for box, score, k in zip(pred["boxes"].tolist(), pred["scores"].tolist(),
                                 pred["classes"].tolist()):
            if score >= threshold:
                out.append({"box": [round(v / scale, 1) for v in box], "label": names[k],
                            "score": round(score, 4)})
        counts = {n: sum(o["label"] == n for o in out) for n in names}
        return {"objects": out, "counts": counts, "min_score": threshold,
                "warnings": image_warnings + warnings}

    def segment(self, image: ImageLike, classes: Optional[Sequence[str]] = None
                ) -> Dict[str, Any]:
        """``{"mask": int64 [H, W] indices into "classes", "classes": [...], "warnings"}``.
        ``classes`` must start with ``"background"``: index 0 of the mask is background, as
        in training."""
        names, warnings = checks.check_labels(classes if classes is not None
                                              else self.classes["segment"], "classes")
        if names[0] != "background":
            raise ValueError(f"classes must start with 'background' (mask index 0 is the "
                             f"background, as the model was trained), got {names}; write "
                             f"{['background'] + [n for n in names if n != 'background']}")
        batch, image_warnings = self._prepare(
            image, "segment", prompts.render("segment", classes=names), classes=names)
        mask = self.model.predict(batch)[0]["mask"]
        h, w = batch["orig_sizes"][0]
        sh, sw = round(h * batch["scales"][0]), round(w * batch["scales"][0])
        mask = mask[:sh, :sw][None, None].float()
        mask = F.interpolate(mask, size=(h, w), mode="nearest")[0, 0].long()
        return {"mask": mask.numpy(), "classes": names, "warnings": image_warnings + warnings}

    def classify(self, image: ImageLike, labels: Sequence[str]) -> Dict[str, Any]:
        """``{"label": str, "probs": {label: p}, "warnings": [...]}`` over the candidate
        ``labels`` (a list of distinct names; one label warns: it always scores 1)."""
        names, warnings = checks.check_labels(labels, "labels", allow_single=False)
        batch, image_warnings = self._prepare(
            image, "classify", prompts.render("classify", classes=names), classes=names,
            label=0)
        pred = self.model.predict(batch)[0]
        probs = {n: round(float(p), 4) for n, p in zip(names, pred["probs"])}
        return {"label": names[pred["label"]], "probs": probs,
                "warnings": image_warnings + warnings}

    def describe(self, image: ImageLike, labels: Optional[Sequence[str]] = None
                 ) -> Dict[str, Any]:
        """Morphology of a single-cell image: ``{"attributes": {...}, "attribute_confidence":
        {...}, "label": type or None, "text": str, "generated": str, "confidence": float,
        "warnings": [...]}``.

        ``label`` is the classify head's choice among ``labels`` (default: the cell types
        of ``model.reading.types``; ``None`` when there are none). ``generated`` is the
        decoder's sentence and ``confidence`` its probability; ``text`` is that sentence
        when it agrees with the attributes and the label, else one written from them
        (:func:`unihema.data.language.describe_cell`) with a ``description_rewritten``
        warning naming what disagreed."""
        batch, warnings = self._prepare(image, "morphology", prompts.render("morphology"),
                                        attributes={}, target="")
        pred = self.model.predict(batch)[0]
        attributes, generated = pred["attributes"], pred.get("text", "")
        label = None
        if labels is None and self.model.config.reading.types:
            from unihema.modeling.reading import Reader

            labels = Reader(self.model).cell_labels or None
        if labels is not None and "classify" in self.model.heads:
            names, label_warnings = checks.check_labels(labels, "labels", allow_single=False)
            warnings += label_warnings
            label = self.classify(image, names)["label"]
        text = generated
        conflicts = checks.description_conflicts(generated, attributes, label)
        if conflicts:
            text = language.describe_cell(label, attributes)
            warnings.append(checks.warning(
                "description_rewritten", f"the generated sentence {generated!r} disagrees "
                f"with the prediction ({'; '.join(conflicts)}); written from the attributes "
                f"instead"))
        return {"attributes": attributes,
                "attribute_confidence": {a: round(p, 4) for a, p in
                                         pred.get("attribute_confidence", {}).items()},
                "label": label, "text": text, "generated": generated,
                "confidence": round(pred.get("confidence", 0.0), 4), "warnings": warnings}

    def fill(self, image: ImageLike, text_with_sentinels: str) -> Dict[str, Any]:
        """Fill ``<extra_id_N>`` spans of a report: ``{"text": the completed text,
        "confidence": probability of the generated spans, "warnings": [...]}``."""
        if not isinstance(text_with_sentinels, str):
            raise TypeError(f"text_with_sentinels must be a string, got "
                            f"{type(text_with_sentinels).__name__}")
        batch, warnings = self._prepare(
            image, "mlm", prompts.render("mlm", text=text_with_sentinels), target="",
            masked_text=text_with_sentinels)
        pred = self.model.predict(batch)[0]
        return {"text": language.unmask(text_with_sentinels, pred["text"]),
                "confidence": round(pred["confidence"], 4), "warnings": warnings}

    def read(self, image: ImageLike) -> Dict[str, Any]:
        """What the model sees on the image, as its text tasks are told (``model.reading``):
        ``{"entries": [{"text": "32 red blood cells", "confidence": 0.71}, ...], "report":
        str, "warnings": [...]}`` for a field (counts at :attr:`score_threshold`); the type
        and attributes for a single cell. No entries for a model trained without
        ``model.reading``. An entry's confidence: :mod:`unihema.modeling.reading`."""
        batch, warnings = self._prepare(image, "vqa", "")
        if not self.model.config.reading.tasks:
            return {"entries": [], "report": "", "warnings": warnings}
        reading = self.model.readings(batch)[0]
        entries = [{"text": text, "confidence": round(float(c), 4)}
                   for (_, text), c in zip(reading["entries"], reading["confidences"])]
        return {"entries": entries, "report": reading["report"], "warnings": warnings}
