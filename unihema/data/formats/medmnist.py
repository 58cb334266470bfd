"""MedMNIST ``.npz`` archives (``bloodmnist.npz``: ``train_images``, ``train_labels``, ...).

Images inside an archive are addressed as ``<file.npz>::<array>/<index>``
(``bloodmnist.npz::train_images/12``); :func:`unihema.data.io.read_image` and
:func:`~unihema.data.io.image_size` read such paths, so adapters use them as ``image_path``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Tuple

import numpy as np

from unihema.data.formats._common import PathLike, data_error


def npz_image_path(npz: PathLike, array: str, index: int) -> str:
    """``"<npz>::<array>/<index>"``, the image path of one archived image."""
    return f"{npz}::{array}/{int(index)}"


def read_medmnist_npz(path: PathLike, split: str) -> Tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split.

    Returns:
        ``images`` uint8 ``[N, H, W]`` (gray) or ``[N, H, W, 3]``; ``labels`` int64 ``[N]``
        (MedMNIST stores ``[N, 1]``; multi-label ``[N, K]`` archives are rejected).

    Raises:
        DataError: missing or unreadable file, missing ``<split>_images``/``<split>_labels``
            (the arrays found are listed), a count mismatch, an unexpected dtype or shape.
    """
    p = Path(path)
    if not p.is_file():
        raise data_error(p, "file not found")
    try:
        with np.load(p, allow_pickle=False) as npz:
            keys = list(npz.files)
            names = (f"{split}_images", f"{split}_labels")
            missing = [k for k in names if k not in keys]
            if missing:
                raise data_error(p, f"missing array(s) {missing}; arrays found: {keys}")
            images, labels = npz[names[0]], npz[names[1]]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise data_error(p, f"not a readable .npz archive ({type(exc).__name__}: {exc})") \
            from None
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or (
            images.ndim == 4 and images.shape[3] != 3):
        raise data_error(p, f"expected uint8 [N, H, W] or [N, H, W, 3], got {images.dtype} "
                            f"{list(images.shape)}", field=f"{split}_images")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise data_error(p, f"expected integer labels [N] or [N, 1], got {labels.dtype} "
                            f"{list(labels.shape)}", field=f"{split}_labels")
    if len(labels) != len(images):
        raise data_error(p, f"{len(images)} images but {len(labels)} labels",
                         field=f"{split}_labels")
    return images, labels.astype(np.int64)
