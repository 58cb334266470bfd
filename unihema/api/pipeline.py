"""One image (a path, a PIL image or an ``[H, W, 3]`` uint8 array) in, task results out.

Results are in the coordinates of the original image: boxes are absolute ``xyxy`` pixels of
the image as given, masks have its height and width.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from unihema.data import language, prompts
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
                 classes: Optional[Dict[str, List[str]]] = None, crop_size: int = 0) -> None:
        self.model = model.eval()
        self.image_size = image_size
        self.upscale = upscale
        #: the single-cell image of classify / morphology is resized to this side (0: native)
        self.crop_size = int(crop_size)
        self.classes = {**DEFAULT_CLASSES, **(classes or {})}

    @classmethod
    def from_pretrained(cls, directory: Union[str, Path]) -> "UniHemaPipeline":
        model = UniHema.from_pretrained(directory)
        meta = getattr(model, "checkpoint_meta", {})
        return cls(model, image_size=int(meta.get("image_size", 256)),
                   upscale=bool(meta.get("upscale", False)), classes=meta.get("classes"),
                   crop_size=int(meta.get("crop_size", 0) or 0))

    # ------------------------------------------------------------------ plumbing
    def _batch(self, image: ImageLike, task: str, prompt: str, **item: Any) -> Dict[str, Any]:
        arr = to_rgb_array(image)
        h, w = arr.shape[:2]
        tensor = torch.from_numpy(arr).permute(2, 0, 1).contiguous()
        scale = 1.0
        # classify and describe take a single-cell image
        side = resized_side(max(h, w), task in ("classify", "morphology"), self.image_size,
                            self.upscale, self.crop_size)
        if side != max(h, w):
            tensor, _, _, scale = resize_longest(tensor, np.zeros((0, 4), np.float32), None,
                                                 side)
        return collate([{"image": tensor.float() / 255.0, "task": task, "key": "input",
                         "orig_size": (h, w), "scale": float(scale), "prompt": prompt, **item}])

    # ------------------------------------------------------------------ tasks
    def ask(self, image: ImageLike, question: str) -> str:
        """Free-text answer to ``question`` about the image."""
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
        mask = mask[:sh, :sw][None, None].float()
        mask = F.interpolate(mask, size=(h, w), mode="nearest")[0, 0].long()
        return {"mask": mask.numpy(), "classes": names}

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
