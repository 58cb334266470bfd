"""One image (a path, a PIL image or an ``[H, W, 3]`` uint8 array) in, task results out.

Results are in the coordinates of the original image: boxes are absolute ``xyxy`` pixels of
the image as given, masks have its height and width.

Every result is a dict with ``"warnings"``: ``[{"code": str, "message": str}]``, the reasons
not to trust it as it stands (:data:`unihema.api.checks.WARNINGS`, docs/model.md "Warnings").
Text answers carry ``"confidence"``: the probability the decoder gave the answer it wrote
(the product of its token probabilities, in [0, 1]).

Inputs are checked before the model runs: a file goes through :func:`unihema.data.io.read_image`
(missing, empty, corrupt, too large: an ``ImageReadError`` naming it); an array must be
``uint8 [H, W]``, ``[H, W, 3]`` or ``[H, W, 4]`` with at least one pixel and within the pixel
limit (``ValueError``); a question or text must be a ``str`` (``TypeError``).

Peak memory for a large input stays near the decoded image plus the result: the image is
resized to the model's scale before it becomes float, and a segmentation mask is computed at
that scale and enlarged as class indices, never as ``[C, H, W]`` scores at full size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image

from unihema.api import checks
from unihema.data import image_stats, language, prompts
from unihema.data.collate import collate
from unihema.data.image_guard import size_problem
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
    """``uint8 [H, W, 3]`` from a path (any format ``read_image`` decodes), PIL or numpy.

    Raises:
        ImageReadError: an unreadable, empty or too large file (the message names it).
        ValueError: an array or PIL image of another dtype or layout, with no pixels, or above
            the pixel limit (``UNIHEMA_MAX_IMAGE_PIXELS``).
        TypeError: anything else (``None``, a number, a list of paths).
    """
    if isinstance(image, (str, Path)):
        return read_image(image)
    if isinstance(image, Image.Image):
        _check_pixels(image.size, f"PIL image {image.mode} {image.size[0]}x{image.size[1]}")
        return np.array(image.convert("RGB"))  # a writable copy (torch.from_numpy needs one)
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a file path, a PIL image or a numpy array, got "
                        f"{type(image).__name__}")
    arr = image
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)) \
            or arr.dtype != np.uint8:
        raise ValueError(f"image array: expected uint8 [H, W], [H, W, 3] or [H, W, 4] (RGB, "
                         f"0-255), got {arr.dtype} {list(arr.shape)}")
    _check_pixels((arr.shape[1], arr.shape[0]), f"image array {list(arr.shape)}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    return np.ascontiguousarray(arr[..., :3])


def _check_pixels(size: Sequence[int], what: str) -> None:
    """An in-memory image needs at least one pixel and must be within the pixel limit."""
    if min(size) < 1:
        raise ValueError(f"{what}: the image has no pixels (width and height must be >= 1)")
    problem = size_problem((int(size[0]), int(size[1])))
    if problem is not None:
        raise ValueError(f"{what}: {problem}")


def resolve_device(device: Union[str, torch.device]) -> torch.device:
    """``device`` as a ``torch.device`` that exists on this machine, or a ``ValueError``
    naming it and the choices (``cpu``, ``cuda``, ``cuda:N``, ``mps``)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device '{device}' is not a torch device; use cpu, cuda, cuda:N or "
                         f"mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device '{device}': CUDA is not available on this machine (torch "
                             f"{torch.__version__}, {torch.cuda.device_count()} GPUs "
                             f"visible); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device '{device}': only {torch.cuda.device_count()} CUDA "
                             f"device(s) visible (cuda:0 ..)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device '{device}': MPS is not available on this machine; use cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device '{device}' is not supported; use cpu, cuda, cuda:N or mps")
    return dev


def _check_text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__} {value!r:.60}")
    return value


class UniHemaPipeline:
    """Wraps a :class:`UniHema` model with the preprocessing it was trained with."""

    def __init__(self, model: UniHema, *, image_size: int = 256, upscale: bool = False,
                 classes: Optional[Dict[str, List[str]]] = None, crop_size: int = 0,
                 meta: Optional[Dict[str, Any]] = None,
                 device: Union[str, torch.device] = "cpu") -> None:
        #: where the model runs; inputs are moved there, results come back as CPU values
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        self.image_size = image_size
        self.upscale = upscale
        #: the single-cell image of classify / morphology is resized to this side (0: native)
        self.crop_size = int(crop_size)
        self.classes = {**DEFAULT_CLASSES, **(classes or {})}
        #: the checkpoint's metadata (``image_stats``: what the training images looked like)
        self.meta = dict(meta or {})

    @classmethod
    def from_pretrained(cls, directory: Union[str, Path],
                        device: Union[str, torch.device] = "cpu") -> "UniHemaPipeline":
        """Load a ``save_pretrained`` folder to run on ``device`` (checked before loading)."""
        device = resolve_device(device)
        model = UniHema.from_pretrained(directory)
        meta = getattr(model, "checkpoint_meta", {})
        return cls(model, image_size=int(meta.get("image_size", 256)),
                   upscale=bool(meta.get("upscale", False)), classes=meta.get("classes"),
                   crop_size=int(meta.get("crop_size", 0) or 0), meta=meta,
                   device=device)

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
        # a channels-last view: the resize reads it as is, so a large image is never copied
        # at full size, and only the resized one becomes float
        tensor = torch.from_numpy(arr).permute(2, 0, 1)
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
        del arr
        batch = collate([{"image": tensor.float().contiguous() / 255.0, "task": task,
                          "key": "input", "orig_size": (h, w), "scale": float(scale),
                          "prompt": prompt, **item}])
        if self.device.type != "cpu":
            from unihema.engine.utils import to_device

            batch = to_device(batch, self.device)
        return batch, warnings

    def _batch(self, image: ImageLike, task: str, prompt: str, **item: Any) -> Dict[str, Any]:
        return self._prepare(image, task, prompt, **item)[0]

    # ------------------------------------------------------------------ tasks
    def ask(self, image: ImageLike, question: str) -> Dict[str, Any]:
        """``{"answer": str, "confidence": float, "warnings": [...]}``: a free-text answer
        to ``question`` about the image and the probability the model gave it. Warns on a
        question of a kind it was not trained on and on an answer of the wrong kind."""
        _check_text(question, "question")
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
        return {"mask": nearest_resize(mask[:sh, :sw].cpu().numpy(), h, w), "classes": names,
                "warnings": image_warnings + warnings}

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
        _check_text(text_with_sentinels, "text_with_sentinels")
        batch, warnings = self._prepare(
            image, "mlm", prompts.render("mlm", text=text_with_sentinels), target="",
            masked_text=text_with_sentinels)
        pred = self.model.predict(batch)[0]
        return {"text": language.unmask(text_with_sentinels, pred["text"]),
                "confidence": round(pred["confidence"], 4), "warnings": warnings}

    def analyze(self, inputs: Any, **options: Any):
        """Whole-smear analysis (:func:`unihema.analysis.run.analyze`) -> ``SmearAnalysis``."""
        from unihema.analysis.run import analyze

        return analyze(self, inputs, **options)

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


def nearest_resize(index_map: np.ndarray, height: int, width: int) -> np.ndarray:
    """``int64 [height, width]`` nearest-neighbour enlargement of an ``[h, w]`` class-index map
    (``F.interpolate(mode="nearest")``'s pixel choice: source ``floor(dst * h / height)``).

    It gathers rows then columns, so nothing but the result is allocated at full size: no
    float copy, no ``[C, H, W]`` scores."""
    h, w = index_map.shape
    rows = np.minimum((np.arange(height) * (h / height)).astype(np.int64), h - 1)
    cols = np.minimum((np.arange(width) * (w / width)).astype(np.int64), w - 1)
    return index_map.astype(np.int64, copy=False)[rows][:, cols]
