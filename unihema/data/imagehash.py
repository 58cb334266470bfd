"""Content hashes of images: an exact one (sha256) and a perceptual one, and fast matching.

Exact: :func:`file_sha256` is the sha256 of the file's bytes. Bytes, not decoded pixels,
because a byte copy is what a copied file is, the digest needs no decoder (``data check
--fast`` reads headers only and still finds copies) and it is the same on every machine and
library version, so digests recorded by training compare with digests taken at evaluation.
A lossless re-encoding (BMP -> PNG) keeps the pixels but not the bytes: the perceptual hash
finds it at distance 0. Images inside a ``.npz`` archive (``file.npz::array/i``) have no bytes
of their own: their digest is that of the array member's shape and pixels.

Perceptual: :func:`perceptual_hash` is a DCT hash of :data:`HASH_BITS` bits. The image is made
gray and area-averaged to ``THUMB x THUMB`` pixels (whatever its size and aspect: a resized
copy gives the same thumbnail); a region of it is area-resampled to ``GRID x GRID``, its 2-D
DCT taken, and the :data:`HASH_BITS` lowest-frequency coefficients (zig-zag order, DC left out;
up to about 7 cycles per image) become one bit each: above their median or not. Every image
gets :data:`NUM_PROBES` such hashes: row 0 of the whole image and rows of the image with
1.5 % or 3 % cut from one or both sides of each axis (:data:`PROBE_CROPS`). A crop of up to
about 3 % per axis of an image then hashes close to one of the original's rows, while an
unprobed DCT hash drifts by 10-20 bits out of 128 for a 2 % crop.

Distance between two images: the smallest Hamming distance between one's row 0 and any row
of the other; near duplicates are pairs at most :data:`NEAR_THRESHOLD` bits apart. The
threshold comes from measurements on real smears and cell crops (docs/data_format.md,
"Duplicates and leaks"): re-encoded, resized and cropped copies came within 14 bits, distinct
images stayed 18 or more bits apart.

Matching (:func:`near_pairs`) is multi-index hashing: the 128 bits are cut into 8 bands of 16;
two hashes within ``t`` bits agree within ``t // 8`` bits on at least one band (pigeonhole),
so each query looks up its band values and their ``t // 8``-bit neighbours in sorted arrays
and only those candidates get a full distance. No Python loop runs over pairs.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np
from PIL import Image

from unihema.data import io

#: bits of one perceptual hash
HASH_BITS = 128
#: near duplicates: at most this many differing bits (measured; see the module docstring)
NEAR_THRESHOLD = 14
#: side of the gray thumbnail every image is reduced to first
THUMB = 64
#: side of the region resampled for the DCT
GRID = 32
#: (cut at the low side, cut at the high side) of one axis, as fractions of the image
PROBE_CROPS: Tuple[Tuple[float, float], ...] = (
    (0.0, 0.0), (0.015, 0.0), (0.0, 0.015), (0.03, 0.0), (0.0, 0.03), (0.015, 0.015))
#: hashes per image: every combination of a horizontal and a vertical crop (row 0: none)
NUM_PROBES = len(PROBE_CROPS) ** 2
_BANDS = 8
_WORDS = HASH_BITS // 64


def file_sha256(path: Union[str, Path]) -> str:
    """sha256 (hex) of an image file's bytes; of shape and pixels for a ``.npz`` member.

    Raises:
        ImageReadError: the file is missing or unreadable (naming it).
    """
    npz = io.split_npz_path(path)
    if npz is not None:
        pixels = io.read_image(path)
        h = hashlib.sha256(repr(pixels.shape).encode())
        h.update(pixels.tobytes())
        return h.hexdigest()
    path = Path(path)
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise io.ImageReadError(f"{path}: cannot read the file to hash it ({exc})") from None
    return h.hexdigest()


# ----------------------------------------------------------------------------- the hash
def _zigzag(n: int) -> Tuple[np.ndarray, np.ndarray]:
    order = sorted(((i, j) for i in range(n) for j in range(n) if i + j),
                   key=lambda t: (t[0] + t[1], t[0]))[:HASH_BITS]
    return np.array([i for i, _ in order]), np.array([j for _, j in order])


def _area_matrix(low: float, high: float) -> np.ndarray:
    """``[GRID, THUMB]`` weights that area-average ``[low, high]`` of a THUMB-pixel axis onto
    GRID pixels (what Pillow's BOX filter does for a fractional box)."""
    start, stop = low * THUMB, THUMB - high * THUMB
    edges = start + (stop - start) * np.arange(GRID + 1) / GRID
    pixel = np.arange(THUMB)
    overlap = (np.minimum(edges[1:, None], pixel[None, :] + 1)
               - np.maximum(edges[:-1, None], pixel[None, :]))
    weights = np.clip(overlap, 0.0, None)
    return weights / weights.sum(axis=1, keepdims=True)


def _operators() -> Tuple[np.ndarray, Tuple[np.ndarray, np.ndarray], int]:
    k_max = int(max(i for i in _zigzag(GRID)[0])) + 1
    n = np.arange(GRID)
    dct = np.cos(np.pi * (2 * n[None, :] + 1) * np.arange(k_max)[:, None] / (2 * GRID))
    dct *= np.sqrt(2.0 / GRID)
    dct[0] /= np.sqrt(2.0)
    # one [k_max, THUMB] operator per crop: resample the cropped axis, then the DCT
    ops = np.concatenate([dct @ _area_matrix(lo, hi) for lo, hi in PROBE_CROPS])
    return ops.astype(np.float32), _zigzag(k_max), k_max


_OPS, (_ZI, _ZJ), _K = _operators()


def thumbnail(image: np.ndarray) -> np.ndarray:
    """``float32 [THUMB, THUMB]`` gray, area-averaged, of an ``uint8 [H, W, 3]`` image."""
    gray = Image.fromarray(image).convert("L")
    return np.asarray(gray.resize((THUMB, THUMB), Image.BOX), dtype=np.float32)


def perceptual_hash(image: np.ndarray) -> np.ndarray:
    """``uint64 [NUM_PROBES, 2]``: the 128-bit hashes of the image and of its crops (row 0:
    the whole image; rows in :data:`PROBE_CROPS` order, vertical crop major).

    Args:
        image: ``uint8 [H, W, 3]`` as :func:`unihema.data.io.read_image` returns it.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an uint8 [H, W, 3] image, got {image.dtype} "
                         f"{list(image.shape)}")
    coeffs = _OPS @ thumbnail(image) @ _OPS.T  # [(crop_y, ky), (crop_x, kx)]
    n = len(PROBE_CROPS)
    blocks = coeffs.reshape(n, _K, n, _K).transpose(0, 2, 1, 3)  # [crop_y, crop_x, ky, kx]
    values = blocks[:, :, _ZI, _ZJ].reshape(NUM_PROBES, HASH_BITS)
    bits = values > np.median(values, axis=1, keepdims=True)
    packed = np.ascontiguousarray(np.packbits(bits, axis=1))
    return packed.view(">u8").astype(np.uint64)


def to_hex(h: np.ndarray) -> str:
    """One ``uint64 [2]`` hash as 32 hex digits."""
    return "".join(f"{int(w):016x}" for w in h)


def from_hex(text: str) -> np.ndarray:
    """Inverse of :func:`to_hex`.

    Raises:
        ValueError: not 32 hex digits.
    """
    if len(text) != 16 * _WORDS or any(c not in "0123456789abcdef" for c in text.lower()):
        raise ValueError(f"expected a perceptual hash of {16 * _WORDS} hex digits, got "
                         f"{text!r}")
    return np.array([int(text[16 * w:16 * (w + 1)], 16) for w in range(_WORDS)],
                    dtype=np.uint64)


# ----------------------------------------------------------------------------- matching
_BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each ``uint64`` (``np.bitwise_count`` where NumPy has it)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    x = np.ascontiguousarray(x, dtype=np.uint64)
    return _BYTE_BITS[x.view(np.uint8)].reshape(x.shape + (8,)).sum(axis=-1)


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between ``uint64 [..., 2]`` hashes (broadcast)."""
    return popcount(np.bitwise_xor(a, b)).astype(np.int32).sum(axis=-1)


def _band(h: np.ndarray, b: int) -> np.ndarray:
    word, shift = divmod(b, 64 // 16)
    return ((h[..., word] >> np.uint64(48 - 16 * shift)) & np.uint64(0xFFFF)).astype(np.int64)


def _neighbour_masks(radius: int) -> np.ndarray:
    masks = [0]
    for r in range(1, radius + 1):
        masks += [sum(1 << i for i in c) for c in itertools.combinations(range(16), r)]
    return np.array(masks, dtype=np.int64)


def _query(queries: np.ndarray, table: np.ndarray, threshold: int
           ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(query index, table row, distance)`` of every query hash ``[Q, 2]`` within
    ``threshold`` bits of a table hash ``[T, 2]`` (each pair once)."""
    masks = _neighbour_masks(threshold // _BANDS)
    chunk = max(1, (1 << 16) // len(masks))  # bounds the lookups held at once
    found_q, found_t = [], []
    for b in range(_BANDS):
        keys = _band(table, b)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        for start in range(0, len(queries), chunk):
            q = queries[start:start + chunk]
            probe = (_band(q, b)[:, None] ^ masks[None, :]).ravel()
            lo = np.searchsorted(sorted_keys, probe, side="left")
            hi = np.searchsorted(sorted_keys, probe, side="right")
            counts = hi - lo
            if not counts.any():
                continue
            owner = np.repeat(np.arange(len(probe)) // len(masks), counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            rows = order[np.repeat(lo, counts) + offsets]
            d = distance(q[owner], table[rows])
            keep = d <= threshold
            found_q.append(owner[keep] + start)
            found_t.append(rows[keep])
    if not found_q:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty.astype(np.int32)
    qi, ti = np.concatenate(found_q), np.concatenate(found_t)
    pair = np.unique(qi * len(table) + ti)
    qi, ti = pair // len(table), pair % len(table)
    return qi, ti, distance(queries[qi], table[ti])


def near_pairs(a: np.ndarray, b: Optional[np.ndarray] = None,
               threshold: int = NEAR_THRESHOLD) -> List[Tuple[int, int, int]]:
    """Pairs of images within ``threshold`` bits, as ``(i, j, distance)``, sorted.

    Args:
        a: ``uint64 [N, P, 2]`` hashes of N images (P rows each, row 0 the whole image; a
            training record has P = 1).
        b: ``uint64 [M, P', 2]``: pairs ``(i in a, j in b)``; ``None``: pairs within ``a``
            with ``i < j``.
        threshold: the largest distance kept.

    The distance of two images is the smallest over "row 0 of one, any row of the other",
    both ways round (either image may be the cropped one).
    """
    if not 0 <= threshold < HASH_BITS:
        raise ValueError(f"threshold must be in [0, {HASH_BITS}), got {threshold}")
    a = np.asarray(a, dtype=np.uint64)
    other = a if b is None else np.asarray(b, dtype=np.uint64)
    found = []
    for queries, table, flip in ((a, other, False), (other, a, True)):
        if b is None and flip:
            break  # within one set, every image already queried every other
        if not len(queries) or not len(table):
            continue
        qi, ti, d = _query(queries[:, 0], table.reshape(-1, _WORDS), threshold)
        owner = ti // table.shape[1]
        found.append(np.stack([owner, qi, d] if flip else [qi, owner, d], axis=1))
    if not found:
        return []
    i, j, d = np.concatenate(found).T
    if b is None:
        i, j = np.minimum(i, j), np.maximum(i, j)
        keep = i != j
        i, j, d = i[keep], j[keep], d[keep]
    order = np.lexsort((d, j, i))  # per pair, the smallest distance first
    i, j, d = i[order], j[order], d[order]
    first = np.ones(len(i), dtype=bool)
    first[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])
    return list(zip(i[first].tolist(), j[first].tolist(), d[first].tolist()))


__all__ = [
    "HASH_BITS", "NEAR_THRESHOLD", "NUM_PROBES", "PROBE_CROPS", "distance", "file_sha256",
    "from_hex", "near_pairs", "perceptual_hash", "popcount", "thumbnail", "to_hex",
]
