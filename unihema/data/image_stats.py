"""Simple colour and size statistics of the training images, kept in a checkpoint so inference
can say when an input is unlike what the model was trained on.

Per image the statistic is ``[mean R, mean G, mean B, std of grey]`` over its pixels in [0, 1]
(read from a copy shrunk to at most 128 px, which changes neither much) plus its longer side.
:func:`image_statistics` summarises the training images by kind (``"field"``: detection,
segmentation, text tasks; ``"cell"``: classification and morphology crops) as the mean and
standard deviation of each feature and the median longer side; :func:`compare` measures how
far one input lies from that summary.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np

#: Feature names, in the order of the vectors (written into the checkpoint with them).
FEATURES = ("mean_r", "mean_g", "mean_b", "std_grey")
#: A feature's spread is taken as at least this much (a dataset of near-identical images
#: would otherwise flag every new one).
MIN_STD = 0.03
#: Images read per kind at most (evenly spread over the list): enough for a mean and a spread.
MAX_IMAGES = 200


def features(image: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 3]`` -> ``[4]`` float: mean of each channel and std of the grey image."""
    step = max(1, max(image.shape[:2]) // 128)
    x = image[::step, ::step, :3].astype(np.float32) / 255.0
    grey = x.mean(-1)
    return np.array([*x.reshape(-1, 3).mean(0), grey.std()], np.float32)


def image_statistics(images: Iterable[Tuple[str, str]], max_images: int = MAX_IMAGES
                     ) -> Dict[str, Any]:
    """``(image path, kind)`` pairs -> ``{kind: {"mean": [4], "std": [4], "side": median
    longer side, "n": images read}, "features": FEATURES}``. Distinct paths only; an image
    that cannot be read is skipped (``data check`` reports it; a statistic does not fail a
    run)."""
    from unihema.data.io import read_image

    by_kind: Dict[str, Dict[str, None]] = {}
    for path, kind in images:
        by_kind.setdefault(kind, {})[str(path)] = None
    out: Dict[str, Any] = {"features": list(FEATURES)}
    for kind, distinct in by_kind.items():
        paths = list(distinct)
        pick = [paths[int(i)] for i in np.linspace(0, len(paths) - 1,
                                                   min(max_images, len(paths)))]
        rows, sides = [], []
        for path in pick:
            try:
                arr = read_image(path)
            except (OSError, ValueError):
                continue
            rows.append(features(arr))
            sides.append(max(arr.shape[:2]))
        if rows:
            stack = np.stack(rows)
            out[kind] = {"mean": [round(float(v), 4) for v in stack.mean(0)],
                         "std": [round(float(v), 4) for v in stack.std(0)],
                         "side": int(np.median(sides)), "n": len(rows)}
    return out


def compare(image: np.ndarray, stats: Optional[Mapping[str, Any]], kind: str
            ) -> Optional[Tuple[str, float, float, float]]:
    """The feature of ``image`` farthest from the training images of ``kind``, as
    ``(feature name, its value, training mean, distance in training standard deviations)``;
    ``None`` when the checkpoint recorded no statistics for that kind."""
    summary = (stats or {}).get(kind)
    if not summary:
        return None
    value = features(image)
    mean = np.asarray(summary["mean"], np.float32)
    std = np.maximum(np.asarray(summary["std"], np.float32), MIN_STD)
    z = np.abs(value - mean) / std
    i = int(z.argmax())
    return FEATURES[i], float(value[i]), float(mean[i]), float(z[i])


def image_kind(single_cell: bool, meta_kind: Optional[str] = None) -> str:
    """``"cell"`` for the input of a single-cell task (and a sample whose meta kind is
    ``"crop"``), else ``"field"``."""
    return "cell" if single_cell or meta_kind == "crop" else "field"


def summarise_splits(splits: Sequence[Any], single_cell: Callable[[str], bool]
                     ) -> Dict[str, Any]:
    """:func:`image_statistics` of the trainer's task splits (``split.task``,
    ``split.samples`` with ``image_path`` and ``meta``); ``single_cell(task)``: whether the
    task's input is one cell (its spec's ``single_cell``)."""
    return image_statistics((s.image_path, image_kind(single_cell(sp.task), s.meta.get("kind")))
                            for sp in splits for s in sp.samples)
