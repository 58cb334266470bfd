"""One image (a path, a PIL image or an ``[H, W, 3]`` uint8 array) in, task results out.

Results are in the coordinates of the original image: boxes are absolute ``xyxy`` pixels of
the image as given, masks have its height and width.

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
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image

from unihema.data import language, prompts
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
                 device: Union[str, torch.device] = "cpu") -> None:
        #: where the model runs; inputs are moved there, results come back as CPU values
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)
        self.image_size = image_size
        self.upscale = upscale
        #: the single-cell image of classify / morphology is resized to this side (0: native)
        self.crop_size = int(crop_size)
        self.classes = {**DEFAULT_CLASSES, **(classes or {})}

    @classmethod
    def from_pretrained(cls, directory: Union[str, Path],
                        device: Union[str, torch.device] = "cpu") -> "UniHemaPipeline":
        """Load a ``save_pretrained`` folder to run on ``device`` (checked before loading)."""
        device = resolve_device(device)
        model = UniHema.from_pretrained(directory)
        meta = getattr(model, "checkpoint_meta", {})
        return cls(model, image_size=int(meta.get("image_size", 256)),
                   upscale=bool(meta.get("upscale", False)), classes=meta.get("classes"),
                   crop_size=int(meta.get("crop_size", 0) or 0), device=device)

    # ------------------------------------------------------------------ plumbing
    def _batch(self, image: ImageLike, task: str, prompt: str, **item: Any) -> Dict[str, Any]:
        arr = to_rgb_array(image)
        h, w = arr.shape[:2]
        # a channels-last view: the resize reads it as is, so a large image is never copied
        # at full size, and only the resized one becomes float
        tensor = torch.from_numpy(arr).permute(2, 0, 1)
        scale = 1.0
        # classify and describe take a single-cell image
        side = resized_side(max(h, w), task in ("classify", "morphology"), self.image_size,
                            self.upscale, self.crop_size)
        if side != max(h, w):
            tensor, _, _, scale = resize_longest(tensor, np.zeros((0, 4), np.float32), None,
                                                 side)
        del arr
        batch = collate([{"image": tensor.float().contiguous() / 255.0, "task": task,
                          "key": "input", "orig_size": (h, w), "scale": float(scale),
                          "prompt": prompt, **item}])
        if self.device.type != "cpu":
            from unihema.engine.trainer import to_device

            batch = to_device(batch, self.device)
        return batch

    # ------------------------------------------------------------------ tasks
    def ask(self, image: ImageLike, question: str) -> str:
        """Free-text answer to ``question`` (a ``str``) about the image."""
        _check_text(question, "question")
        batch = self._batch(image, "vqa", prompts.render("vqa", question=question),
                            question=question)
        return self.model.predict(batch)[0]["text"]

    def detect(self, image: ImageLike, classes: Optional[Sequence[str]] = None,
               min_score: float = 0.3) -> List[Dict[str, Any]]:
        """Objects as ``[{"box": [x0, y0, x1, y1], "label": str, "score": float}]``."""
        names = list(classes or self.classes["detect"])
        batch = self._batch(image, "detect", prompts.render("detect", classes=names),
                            classes=names)
        pred = self.model.predict(batch)[0]
        scale = batch["scales"][0]
        out = []
        for box, score, k in zip(pred["boxes"].tolist(), pred["scores"].tolist(),
                                 pred["classes"].tolist()):
            if score >= min_score:
                out.append({"box": [round(v / scale, 1) for v in box], "label": names[k],
                            "score": round(score, 4)})
        return out

    def segment(self, image: ImageLike, classes: Optional[Sequence[str]] = None
                ) -> Dict[str, Any]:
        """``{"mask": int64 [H, W] indices into "classes", "classes": [...]}``."""
        names = list(classes or self.classes["segment"])
        batch = self._batch(image, "segment", prompts.render("segment", classes=names),
                            classes=names)
        mask = self.model.predict(batch)[0]["mask"]
        h, w = batch["orig_sizes"][0]
        sh, sw = round(h * batch["scales"][0]), round(w * batch["scales"][0])
        return {"mask": nearest_resize(mask[:sh, :sw].cpu().numpy(), h, w), "classes": names}

    def classify(self, image: ImageLike, labels: Sequence[str]) -> Dict[str, Any]:
        """``{"label": str, "probs": {label: p}}`` over the candidate ``labels``."""
        names = list(labels)
        batch = self._batch(image, "classify", prompts.render("classify", classes=names),
                            classes=names, label=0)
        pred = self.model.predict(batch)[0]
        probs = {n: round(float(p), 4) for n, p in zip(names, pred["probs"])}
        return {"label": names[pred["label"]], "probs": probs}

    def describe(self, image: ImageLike) -> Dict[str, Any]:
        """Morphology of a single-cell image: ``{"attributes": {...}, "text": str}``."""
        batch = self._batch(image, "morphology", prompts.render("morphology"),
                            attributes={}, target="")
        pred = self.model.predict(batch)[0]
        return {"attributes": pred["attributes"], "text": pred.get("text", "")}

    def fill(self, image: ImageLike, text_with_sentinels: str) -> str:
        """Fill ``<extra_id_N>`` spans of a report; returns the completed text."""
        _check_text(text_with_sentinels, "text_with_sentinels")
        batch = self._batch(image, "mlm", prompts.render("mlm", text=text_with_sentinels),
                            target="", masked_text=text_with_sentinels)
        spans = self.model.predict(batch)[0]["text"]
        return language.unmask(text_with_sentinels, spans)

    def read(self, image: ImageLike) -> Dict[str, Any]:
        """What the model sees on the image, as its text tasks are told (``model.reading``):
        ``{"entries": ["32 red blood cells", "1 spherocyte middle left", ...], "report": str}``
        for a field; the type and attributes for a single cell. Empty for a model trained
        without ``model.reading``."""
        if not self.model.config.reading.tasks:
            return {"entries": [], "report": ""}
        batch = self._batch(image, "vqa", "")
        reading = self.model.readings(batch)[0]
        return {"entries": [text for _, text in reading["entries"]],
                "report": reading["report"]}


def nearest_resize(index_map: np.ndarray, height: int, width: int) -> np.ndarray:
    """``int64 [height, width]`` nearest-neighbour enlargement of an ``[h, w]`` class-index map
    (``F.interpolate(mode="nearest")``'s pixel choice: source ``floor(dst * h / height)``).

    It gathers rows then columns, so nothing but the result is allocated at full size: no
    float copy, no ``[C, H, W]`` scores."""
    h, w = index_map.shape
    rows = np.minimum((np.arange(height) * (h / height)).astype(np.int64), h - 1)
    cols = np.minimum((np.arange(width) * (w / width)).astype(np.int64), w - 1)
    return index_map.astype(np.int64, copy=False)[rows][:, cols]
