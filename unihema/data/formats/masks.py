"""Semantic and per-instance mask files.

Semantic masks (one class value per pixel) are decoded by :func:`unihema.data.io.read_mask`
with a value map. This module adds what adapters need around it: the set of values a mask file
holds (to find stray values before training does), and the merging of per-instance mask files
(``y/<image>_<k>.bmp``) into one semantic mask.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Set, Tuple

import numpy as np

from unihema.data.formats._common import PathLike, data_error


def _raw(path: PathLike) -> np.ndarray:
    from unihema.data import io

    p = Path(path)
    io._check_file(p)
    return io._mask_array(p)


def mask_values_present(path: PathLike) -> Set[int]:
    """The distinct raw pixel values of a mask file (palette indices for P images).

    Raises:
        ImageReadError: missing or undecodable file, colour mask with unequal channels.
    """
    return {int(v) for v in np.unique(_raw(path))}


def mask_value_counts(path: PathLike) -> Dict[int, int]:
    """Raw pixel value -> number of pixels holding it, for a mask file."""
    values, counts = np.unique(_raw(path), return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def merge_instance_masks(paths_and_labels: Sequence[Tuple[PathLike, Optional[Any]]],
                         height: int, width: int, value_map: Mapping[Any, int]) -> np.ndarray:
    """Merge per-instance mask files into one semantic mask ``[height, width]``.

    Args:
        paths_and_labels: ``(mask file, label)`` per instance. With a label, every non-zero
            pixel of the file belongs to the instance and gets ``value_map[label]``. With
            ``None``, the file's own non-zero values carry the class (SegPC: one value for the
            nucleus, another for the cytoplasm) and each is mapped by ``value_map[raw value]``.
        value_map: label or raw value -> output value (``> 0``; 0 is background).

    Overlaps are resolved by the larger output value, whatever the file order (so give the
    class that should win, e.g. the nucleus over the cytoplasm, the larger value).

    Returns:
        ``uint8`` (``int32`` when a value exceeds 255) ``[height, width]``, 0 where no instance.

    Raises:
        DataError: a file of another size, a label or raw value missing from ``value_map``.
        ImageReadError: a missing or undecodable file.
    """
    top = max([int(v) for v in value_map.values()] + [0])
    out = np.zeros((height, width), dtype=np.uint8 if top <= 255 else np.int32)
    for path, label in paths_and_labels:
        raw = _raw(path)
        if raw.shape != (height, width):
            raise data_error(path, f"instance mask is {raw.shape[1]}x{raw.shape[0]}, expected "
                                   f"{width}x{height}")
        if label is not None:
            if label not in value_map:
                raise data_error(path, f"label {label!r} is not in the value map "
                                       f"{dict(value_map)}")
            layer = np.where(raw != 0, int(value_map[label]), 0)
        else:
            layer = np.zeros_like(out)
            for v in np.unique(raw):
                v = int(v)
                if v == 0:
                    continue
                if v not in value_map:
                    raise data_error(path, f"instance mask value {v} is not in the value map "
                                           f"{dict(value_map)}")
                layer[raw == v] = int(value_map[v])
        np.maximum(out, layer.astype(out.dtype), out=out)
    return out
