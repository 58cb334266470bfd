"""The perceptual hash: what it survives, what it separates, and the banded matcher."""

from __future__ import annotations

import io as _io
import itertools

import numpy as np
import pytest
from PIL import Image

from unihema.data import imagehash as ih


def texture(seed: int, width: int = 160, height: int = 120) -> np.ndarray:
    """A smooth random RGB image with some fine grain, like a stained field at low power."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    img = np.asarray(coarse.resize((width, height), Image.BICUBIC), dtype=np.float32)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def reencode(img: np.ndarray, fmt: str = "JPEG", **kw) -> np.ndarray:
    buf = _io.BytesIO()
    Image.fromarray(img).save(buf, fmt, **kw)
    return np.asarray(Image.open(buf).convert("RGB"))


def crop(img: np.ndarray, left=0.0, top=0.0, right=0.0, bottom=0.0) -> np.ndarray:
    h, w = img.shape[:2]
    return img[round(top * h):h - round(bottom * h), round(left * w):w - round(right * w)]


def dist(a: np.ndarray, b: np.ndarray) -> int:
    """The matcher's distance: row 0 of one against every row of the other, both ways."""
    ha, hb = ih.perceptual_hash(a), ih.perceptual_hash(b)
    return int(min(ih.distance(ha[0], hb).min(), ih.distance(hb[0], ha).min()))


def test_hash_shape_and_bad_input():
    h = ih.perceptual_hash(texture(0))
    assert h.shape == (ih.NUM_PROBES, 2) and h.dtype == np.uint64
    assert (ih.from_hex(ih.to_hex(h[0])) == h[0]).all()
    with pytest.raises(ValueError, match=r"expected an uint8 \[H, W, 3\] image"):
        ih.perceptual_hash(np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(ValueError, match="32 hex digits"):
        ih.from_hex("xyz")


@pytest.mark.parametrize("name, change", [
    ("jpeg q40", lambda im: reencode(im, quality=40)),
    ("png", lambda im: reencode(im, "PNG")),
    ("half size", lambda im: np.asarray(Image.fromarray(im).resize((80, 60), Image.BILINEAR))),
    ("1.5x", lambda im: np.asarray(Image.fromarray(im).resize((240, 180), Image.BICUBIC))),
    ("crop 3% left+top", lambda im: crop(im, left=0.03, top=0.03)),
    ("crop 1.5% all round", lambda im: crop(im, 0.015, 0.015, 0.015, 0.015)),
    ("crop 2% right, resize, jpeg", lambda im: reencode(np.asarray(Image.fromarray(
        crop(im, right=0.02, bottom=0.01)).resize((120, 88), Image.BILINEAR)), quality=70)),
])
def test_copies_stay_within_the_threshold(name, change):
    for seed in range(4):
        img = texture(seed)
        assert dist(img, change(img)) <= ih.NEAR_THRESHOLD, (name, seed)


def test_distinct_images_stay_apart():
    hashes = np.stack([ih.perceptual_hash(texture(seed)) for seed in range(12)])
    assert ih.near_pairs(hashes) == []
    assert min(dist(texture(i), texture(j)) for i, j in [(0, 1), (2, 3), (4, 5)]) > 30


def brute(a, b, threshold):
    out = []
    for i, j in (itertools.combinations(range(len(a)), 2) if b is None
                 else itertools.product(range(len(a)), range(len(b)))):
        other = a if b is None else b
        d = min(ih.distance(a[i, 0], other[j]).min(), ih.distance(other[j, 0], a[i]).min())
        if d <= threshold:
            out.append((i, j, int(d)))
    return out


@pytest.mark.parametrize("threshold", [0, 6, 14, 17])
def test_banded_matcher_equals_brute_force(threshold):
    rng = np.random.default_rng(threshold)
    a = rng.integers(0, 2 ** 63, (60, 3, 2), dtype=np.uint64)
    for k in range(0, 60, 4):  # plant pairs a few bits apart, row 0 against another row
        flips = rng.choice(128, rng.integers(0, 20), replace=False)
        row = a[k, rng.integers(0, 3)].copy()
        for f in flips:
            row[f // 64] ^= np.uint64(1) << np.uint64(f % 64)
        a[k + 1, 0] = row
    b = np.concatenate([a[::3, :1], rng.integers(0, 2 ** 63, (10, 1, 2), dtype=np.uint64)])
    assert ih.near_pairs(a, threshold=threshold) == brute(a, None, threshold)
    assert ih.near_pairs(a, b, threshold=threshold) == brute(a, b, threshold)
    assert ih.near_pairs(a[:0], b) == [] and ih.near_pairs(a, b[:0]) == []


def test_popcount_fallback_matches(monkeypatch):
    x = np.random.default_rng(0).integers(0, 2 ** 63, (5, 2), dtype=np.uint64)
    expected = [[bin(int(v)).count("1") for v in row] for row in x]
    assert ih.popcount(x).tolist() == expected
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    assert ih.popcount(x).tolist() == expected
