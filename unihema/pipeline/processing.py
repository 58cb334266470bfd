"""The preprocessing a model was trained with, saved beside every checkpoint (public name:
:mod:`unihema.pipeline.processing`).

:class:`UniHemaProcessor` is the one place that turns an image into what the model reads and
maps what it predicts back onto the image as given:

* **resizing** (:func:`resized_side`): the longer side becomes ``image_size`` for a larger
  image (or any image with ``upscale``), a smaller one keeps its native size, so a cell is as
  many pixels wide at inference as in training; a single-cell image (the classify and
  morphology tasks, a crop of a dataset) becomes ``crop_size`` when that is set. Boxes and
  masks move with the pixels (:func:`unihema.pipeline.transforms.resize_longest`);
* **normalisation**: ``uint8`` pixels divided by ``max_pixel_value`` into ``float32 [3, h, w]``
  in [0, 1] (the model standardises by its own channel mean and deviation);
* **padding** (:func:`pad_images`): a batch ``[B, 3, H, W]`` with the images at the top left,
  zeros elsewhere, ``H``, ``W`` rounded up to ``pad_to_multiple``, and ``pixel_mask [B, H, W]``
  true on real pixels (as :func:`unihema.pipeline.collate.collate` pads);
* **prompts**: the fixed evaluation template of each task
  (:func:`unihema.tasks.prompts.render`);
* **outputs back to the original image**: boxes divided by the item's ``scale``, masks cut to
  the real part and enlarged by nearest neighbour to the original height and width.

Training's evaluation mapping (:class:`unihema.pipeline.mapper.DatasetMapper`), the Python API
(:class:`unihema.api.UniHemaPipeline`) and the reading cascade
(:mod:`unihema.modeling.reading`) all go through it, so an image gets the same tensors on
every path.

``preprocessor_config.json`` (written by ``UniHema.save_pretrained``, so by the trainer too)::

    {"processor_class": "UniHemaProcessor", "image_size": 256, "upscale": false,
     "crop_size": 0, "small_side": 128, "max_pixel_value": 255.0, "pad_to_multiple": 32}

A checkpoint written before the file existed gets its processor rebuilt from ``config.json``
(``image_size``, ``upscale``, ``crop_size`` the trainer stored there, ``model.backbone.
small_side``), with the defaults below where those are absent.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image

from unihema.data.image_guard import size_problem
from unihema.data.io import read_image
from unihema.pipeline.transforms import resize_longest
from unihema.tasks import get_task, prompts

PROCESSOR_NAME = "preprocessor_config.json"
#: what ``preprocessor_config.json`` names as its class (checked on load)
PROCESSOR_CLASS = "UniHemaProcessor"


def single_cell(task: str) -> bool:
    """Whether ``task``'s input is one cell (its spec's ``single_cell``): resized to
    ``crop_size`` when that is set."""
    return get_task(task).single_cell

ImageLike = Union[str, Path, Image.Image, np.ndarray]


class ProcessorConfigError(ValueError):
    """A ``preprocessor_config.json`` that cannot be read; the message names the file and the
    field, and what was expected."""


@dataclass(frozen=True)
class ProcessorConfig:
    """The settings of :class:`UniHemaProcessor` (one field of ``preprocessor_config.json``
    each)."""

    #: longer image side after resizing, in pixels (``data.image_size`` of training)
    image_size: int = 256
    #: also enlarge images smaller than ``image_size`` (``data.upscale``)
    upscale: bool = False
    #: longer side single-cell images are resized to, capped at ``image_size`` (0: native)
    crop_size: int = 0
    #: an image whose longer resized side is at most this is a single cell, else a field of
    #: view (``model.backbone.small_side``: the trunk's BatchNorm kind, the reading)
    small_side: int = 128
    #: ``uint8`` pixels are divided by this into [0, 1]
    max_pixel_value: float = 255.0
    #: padded batch sides are multiples of this (the backbone's largest stride)
    pad_to_multiple: int = 32

    def __post_init__(self) -> None:
        problems = _problems(dataclasses.asdict(self))
        if problems:
            raise ValueError("; ".join(f"{k}: {p}" for k, p in problems))


#: field -> (type, check, expectation): what a valid value of each field is
_FIELDS = {
    "image_size": (int, lambda v: v >= 1, "an integer >= 1"),
    "upscale": (bool, lambda v: True, "true or false"),
    "crop_size": (int, lambda v: v >= 0, "an integer >= 0 (0 = native size)"),
    "small_side": (int, lambda v: v >= 0, "an integer >= 0"),
    "max_pixel_value": ((int, float), lambda v: v > 0, "a number > 0"),
    "pad_to_multiple": (int, lambda v: v >= 1, "an integer >= 1"),
}


def _problems(values: Mapping[str, Any]) -> List[Tuple[str, str]]:
    out = []
    for name, (kind, ok, expected) in _FIELDS.items():
        if name not in values:
            continue
        v = values[name]
        wrong_bool = isinstance(v, bool) and kind is not bool
        if wrong_bool or not isinstance(v, kind) or not ok(v):
            out.append((name, f"expected {expected}, got {v!r}"))
    return out


def resized_side(native: int, is_crop: bool, image_size: int, upscale: bool = False,
                 crop_size: int = 0) -> int:
    """The longer side an image of longer side ``native`` is given before augmentation:
    ``crop_size`` for a single-cell crop when set (capped at ``image_size``), else
    ``image_size`` for a larger image (or any image with ``upscale``, or an unknown size, 0),
    else ``native``. The one rule of the mapper, the mixture's size buckets and the Python API."""
    if crop_size and is_crop:
        return min(crop_size, image_size)
    if upscale or not native or native > image_size:
        return image_size
    return native


def target_side(sample: Any, image_size: int, upscale: bool = False, crop_size: int = 0) -> int:
    """:func:`resized_side` of a :class:`~unihema.data.sample.UnifiedSample` (a crop:
    ``meta["kind"] == "crop"``)."""
    return resized_side(max(sample.width or 0, sample.height or 0),
                        sample.meta.get("kind") == "crop", image_size, upscale, crop_size)


def pad_images(images: Sequence[torch.Tensor], pad_to_multiple: int = 32
               ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``[3, h, w]`` images -> ``(images [B, 3, H, W], pixel_mask [B, H, W])`` on the first
    image's device: each image at the top left, zeros elsewhere, ``H`` and ``W`` the largest
    sides rounded up to ``pad_to_multiple`` (as :func:`unihema.pipeline.collate.collate`)."""
    if not images:
        raise ValueError("cannot pad an empty list of images")
    def up(n: int) -> int:
        return -(-n // pad_to_multiple) * pad_to_multiple
    height = up(max(int(im.shape[-2]) for im in images))
    width = up(max(int(im.shape[-1]) for im in images))
    device = images[0].device
    out = torch.zeros((len(images), 3, height, width), dtype=torch.float32, device=device)
    mask = torch.zeros((len(images), height, width), dtype=torch.bool, device=device)
    for i, im in enumerate(images):
        h, w = im.shape[-2:]
        out[i, :, :h, :w] = im
        mask[i, :h, :w] = True
    return out, mask


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


def nearest_resize(index_map: np.ndarray, height: int, width: int) -> np.ndarray:
    """``int64 [height, width]`` nearest-neighbour enlargement of an ``[h, w]`` class-index map
    (``F.interpolate(mode="nearest")``'s pixel choice: source ``floor(dst * h / height)``).

    It gathers rows then columns, so nothing but the result is allocated at full size: no
    float copy, no ``[C, H, W]`` scores."""
    h, w = index_map.shape
    rows = np.minimum((np.arange(height) * (h / height)).astype(np.int64), h - 1)
    cols = np.minimum((np.arange(width) * (w / width)).astype(np.int64), w - 1)
    return index_map.astype(np.int64, copy=False)[rows][:, cols]


class UniHemaProcessor:
    """Image in, model input out, and predictions back to the image (module docstring).

    Args:
        config: the settings (default :class:`ProcessorConfig`); keyword arguments replace
            single fields, e.g. ``UniHemaProcessor(image_size=128)``.
    """

    def __init__(self, config: Optional[ProcessorConfig] = None, **fields: Any) -> None:
        config = config or ProcessorConfig()
        self.config = dataclasses.replace(config, **fields) if fields else config

    def __repr__(self) -> str:
        return f"UniHemaProcessor({self.config})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UniHemaProcessor) and other.config == self.config

    # ------------------------------------------------------------------ resizing
    def side(self, native: int, single_cell: bool) -> int:
        """The longer side an image of longer side ``native`` is resized to
        (:func:`resized_side` with this processor's settings)."""
        c = self.config
        return resized_side(native, single_cell, c.image_size, c.upscale,
                            min(c.crop_size, c.image_size))

    def resize(self, image: torch.Tensor, boxes: Any, mask: Any, single_cell: bool):
        """``uint8 [3, H, W]`` image (a channels-last view is read as is), ``float32 [N, 4]``
        xyxy boxes, ``[H, W]`` mask or ``None`` -> ``(image, boxes [N, 4] tensor, mask,
        scale)`` at :meth:`side`; ``scale`` = output pixels per original pixel (1.0 when the
        size is kept, and nothing is copied then)."""
        h, w = image.shape[-2:]
        side = self.side(max(h, w), single_cell)
        if side != max(h, w):
            return resize_longest(image, boxes, mask, side)
        boxes_t = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        mask_t = None if mask is None else torch.as_tensor(mask)
        return image, boxes_t, mask_t, 1.0

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """``uint8 [3, h, w]`` -> ``float32 [3, h, w]`` in [0, 1]."""
        return image.float().div_(self.config.max_pixel_value)

    def kind(self, side: int, single_cell: bool = False) -> str:
        """``"cell"`` for a single-cell input or a resized longer side of at most
        ``small_side``, else ``"field"``."""
        return "cell" if single_cell or side <= self.config.small_side else "field"

    # ------------------------------------------------------------------ inputs
    def prompt(self, task: str, **fields: Any) -> str:
        """The task's fixed evaluation prompt (:func:`unihema.tasks.prompts.render`)."""
        return prompts.render(task, **fields)

    def item(self, image: ImageLike, task: str, prompt: Optional[str] = None,
             **fields: Any) -> Dict[str, Any]:
        """One item dict as the evaluation mapping makes it: ``image`` ``float32 [3, h, w]``,
        ``task``, ``key`` (``"input"`` unless given), ``orig_size (H, W)``, ``scale``,
        ``prompt`` (default: :meth:`prompt` of ``fields``) and ``fields``."""
        arr = to_rgb_array(image)
        h, w = arr.shape[:2]
        # a channels-last view: the resize reads it as is, so a large image is never copied
        # at full size, and only the resized one becomes float
        tensor = torch.from_numpy(arr).permute(2, 0, 1)
        tensor, _, _, scale = self.resize(tensor, np.zeros((0, 4), np.float32), None,
                                          single_cell(task))
        del arr
        item = {"image": self.normalize(tensor.contiguous()), "task": task, "key": "input",
                "orig_size": (h, w), "scale": float(scale),
                "prompt": self.prompt(task, **fields) if prompt is None else prompt}
        item.update(fields)
        return item

    def pad(self, images: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """:func:`pad_images` with this processor's ``pad_to_multiple``."""
        return pad_images(images, self.config.pad_to_multiple)

    def collate(self, items: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
        """A batch of one task's items (:func:`unihema.pipeline.collate.collate`)."""
        from unihema.pipeline.collate import collate

        return collate(list(items), pad_to_multiple=self.config.pad_to_multiple)

    # ------------------------------------------------------------------ outputs
    @staticmethod
    def box_to_original(box: Sequence[float], scale: float) -> List[float]:
        """An xyxy box of the model's input in pixels of the original image."""
        return [float(v) / scale for v in box]

    @staticmethod
    def mask_to_original(mask: Any, orig_size: Sequence[int], scale: float) -> np.ndarray:
        """``int64 [H, W]`` class indices over the original image from the model's ``[h', w']``
        mask of a padded batch: its real part (``round(H * scale)`` x ``round(W * scale)``),
        enlarged by nearest neighbour (:func:`nearest_resize`)."""
        h, w = int(orig_size[0]), int(orig_size[1])
        sh, sw = round(h * scale), round(w * scale)
        real = mask[:sh, :sw]
        real = real.cpu().numpy() if torch.is_tensor(real) else np.asarray(real)
        return nearest_resize(real, h, w)

    # ------------------------------------------------------------------ files
    def to_dict(self) -> Dict[str, Any]:
        return {"processor_class": PROCESSOR_CLASS, **dataclasses.asdict(self.config)}

    def save_pretrained(self, directory: Union[str, Path]) -> Path:
        """Write ``<directory>/preprocessor_config.json`` (atomically); returns its path."""
        from unihema.config.loader import atomic_write_text

        path = Path(directory) / PROCESSOR_NAME
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def from_dict(cls, values: Any, source: str = PROCESSOR_NAME) -> "UniHemaProcessor":
        """Validate a ``preprocessor_config.json`` object.

        Raises:
            ProcessorConfigError: not an object, another ``processor_class``, an unknown field
                or a bad value; every problem, each naming ``source`` and the field.
        """
        if not isinstance(values, dict):
            raise ProcessorConfigError(f"{source}: expected a JSON object with the fields "
                                       f"{', '.join(_FIELDS)}, got {type(values).__name__}")
        problems = []
        given = values.get("processor_class", PROCESSOR_CLASS)
        if given != PROCESSOR_CLASS:
            problems.append(("processor_class", f"expected '{PROCESSOR_CLASS}', got {given!r}"))
        problems += [(k, f"unknown field; valid fields: {', '.join(_FIELDS)}")
                     for k in values if k not in _FIELDS and k != "processor_class"]
        problems += _problems(values)
        if problems:
            raise ProcessorConfigError(
                f"{source}: {len(problems)} problem(s):\n  "
                + "\n  ".join(f"field '{k}': {p}" for k, p in problems))
        fields = {k: values[k] for k in _FIELDS if k in values}
        if "max_pixel_value" in fields:
            fields["max_pixel_value"] = float(fields["max_pixel_value"])
        return cls(ProcessorConfig(**fields))

    @classmethod
    def from_checkpoint_meta(cls, meta: Mapping[str, Any]) -> "UniHemaProcessor":
        """The processor of a checkpoint without ``preprocessor_config.json``: from what its
        ``config.json`` holds (``image_size``, ``upscale``, ``crop_size`` stored by the trainer,
        ``model.backbone.small_side``); defaults where absent."""
        backbone = ((meta.get("model") or {}).get("backbone") or {})
        fields = {"image_size": meta.get("image_size"), "upscale": meta.get("upscale"),
                  "crop_size": meta.get("crop_size"), "small_side": backbone.get("small_side")}
        return cls.from_dict({k: v for k, v in fields.items() if v is not None},
                             source="config.json")

    @classmethod
    def from_pretrained(cls, directory: Union[str, Path]) -> "UniHemaProcessor":
        """The processor saved in ``directory``; rebuilt from its ``config.json`` when the
        folder predates ``preprocessor_config.json``.

        Raises:
            ProcessorConfigError: a file that is not valid JSON or holds a bad field (names
                the file and the field). FileNotFoundError: neither file exists.
        """
        directory = Path(directory)
        path = directory / PROCESSOR_NAME
        if path.is_file():
            return cls.from_dict(_read_json(path), source=str(path))
        old = directory / "config.json"
        if not old.is_file():
            raise FileNotFoundError(f"'{directory}' holds neither {PROCESSOR_NAME} nor "
                                    f"config.json: not a unihema checkpoint")
        meta = _read_json(old)
        if not isinstance(meta, dict):
            raise ProcessorConfigError(f"{old}: expected a JSON object")
        try:
            return cls.from_checkpoint_meta(meta)
        except ProcessorConfigError as exc:
            raise ProcessorConfigError(str(exc).replace("config.json", str(old), 1)) from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ProcessorConfigError(f"{path}: not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ProcessorConfigError(f"{path}: not valid JSON (line {exc.lineno}, column "
                                   f"{exc.colno}: {exc.msg})") from None


__all__ = ["ImageLike", "PROCESSOR_NAME", "ProcessorConfig", "ProcessorConfigError",
           "single_cell", "UniHemaProcessor", "nearest_resize", "pad_images",
           "resized_side", "target_side", "to_rgb_array"]
