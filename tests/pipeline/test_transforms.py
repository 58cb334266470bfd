"""Augmentations move boxes, masks and pixels together (property tests with hypothesis).

Each test image carries non-overlapping integer boxes drawn as filled rectangles into an instance
mask (box i has value i + 1), so the box of an instance can be checked against its pixels after
any transform.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unihema.config.schema import AugmentConfig
from unihema.pipeline import transforms as T

SETTINGS = settings(max_examples=30, deadline=None)
NO_GEOMETRY = dict(hflip=0.0, vflip=0.0, rot90=0.0, scale=(1.0, 1.0), crop=0.0)
NO_PHOTOMETRY = dict(color_jitter=0.0, hue=0.0, stain_jitter=0.0, blur=0.0)


@st.composite
def scenes(draw, min_side: int = 16, max_side: int = 64):
    """(image uint8 [H, W, 3], boxes float32 [N, 4], instance mask int64 [H, W])."""
    h = draw(st.integers(min_side, max_side))
    w = draw(st.integers(min_side, max_side))
    rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ch, cw = h // rows, w // cols
    boxes = []
    for r in range(rows):
        for c in range(cols):
            if not draw(st.booleans()):
                continue
            bw, bh = draw(st.integers(4, cw)), draw(st.integers(4, ch))
            x0 = c * cw + draw(st.integers(0, cw - bw))
            y0 = r * ch + draw(st.integers(0, ch - bh))
            boxes.append([x0, y0, x0 + bw, y0 + bh])
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    mask = np.zeros((h, w), np.int64)
    for i, (x0, y0, x1, y1) in enumerate(boxes.astype(int)):
        mask[y0:y1, x0:x1] = i + 1
    seed = draw(st.integers(0, 2**32 - 1))
    image = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return image, boxes, mask


def configs(exact_scale: bool = False):
    prob = st.sampled_from([0.0, 0.5, 1.0])
    scale = st.just((1.0, 1.0)) if exact_scale else st.tuples(
        st.floats(0.5, 1.0), st.floats(1.0, 2.0)
    )
    return st.builds(
        AugmentConfig,
        hflip=prob, vflip=prob, rot90=prob, crop=prob, blur=prob, scale=scale,
        crop_min=st.floats(0.3, 1.0), min_visibility=st.floats(0.0, 1.0),
        color_jitter=st.floats(0.0, 0.4), hue=st.floats(0.0, 0.1),
        stain_jitter=st.floats(0.0, 0.2),
    )


def _pixel_box(mask: np.ndarray, value: int):
    ys, xs = np.nonzero(mask == value)
    if ys.size == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


@SETTINGS
@given(scene=scenes(), cfg=configs(), seed=st.integers(0, 2**32 - 1),
       max_size=st.sampled_from([None, 24, 48]))
def test_boxes_follow_instance_pixels(scene, cfg, seed, max_size):
    image, boxes, mask = scene
    aug = T.build_augmentation(cfg, max_size=max_size)
    out_img, out_boxes, out_mask, keep = aug(image, boxes, mask, np.random.default_rng(seed))
    assert out_img.dtype == np.uint8 and out_img.ndim == 3 and out_img.shape[2] == 3
    assert out_mask.shape == out_img.shape[:2] and out_mask.dtype == np.int64
    if max_size is not None:
        assert max(out_mask.shape) <= max_size
    assert set(np.unique(out_mask)) <= set(np.unique(mask))  # nearest neighbour only
    assert out_boxes.shape == (len(keep), 4) and out_boxes.dtype == np.float32
    assert keep.dtype == np.int64 and (np.diff(keep) > 0).all()
    oh, ow = out_mask.shape
    assert (out_boxes[:, [0, 2]] >= 0).all() and (out_boxes[:, [0, 2]] <= ow).all()
    assert (out_boxes[:, [1, 3]] >= 0).all() and (out_boxes[:, [1, 3]] <= oh).all()
    for box, idx in zip(out_boxes, keep):
        pix = _pixel_box(out_mask, idx + 1)
        if pix is None:  # a sliver thinner than a pixel may own no pixel centre
            assert min(box[2] - box[0], box[3] - box[1]) < 1.01
        else:
            np.testing.assert_allclose(box, pix, atol=1.0)


@SETTINGS
@given(scene=scenes(), cfg=configs(exact_scale=True), seed=st.integers(0, 2**32 - 1),
       max_size=st.sampled_from([None, 20, 40]))
def test_dropped_boxes_are_the_hidden_ones(scene, cfg, seed, max_size):
    image, boxes, mask = scene
    aug = T.Augment(cfg, max_size=max_size)
    _, out_boxes, out_mask, keep = aug(image, boxes, mask, np.random.default_rng(seed))
    for i in range(len(boxes)):
        visible = (out_mask == i + 1).sum() / (mask == i + 1).sum()
        if abs(visible - cfg.min_visibility) < 1e-6:
            continue  # at the threshold float rounding may go either way
        should_keep = visible >= cfg.min_visibility and visible > 0
        assert (i in keep) == should_keep, (i, visible, cfg.min_visibility)
    for box, idx in zip(out_boxes, keep):  # integer geometry: boxes equal pixels exactly
        np.testing.assert_allclose(box, _pixel_box(out_mask, idx + 1), atol=1e-3)


@SETTINGS
@given(scene=scenes(), k=st.integers(0, 3))
def test_flips_and_rot90_are_invertible(scene, k):
    image, boxes, mask = scene
    x = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    b, m = torch.from_numpy(boxes), torch.from_numpy(mask)
    for fn in (T.hflip, T.vflip):
        img2, b2, m2 = fn(*fn(x, b, m))
        assert torch.equal(img2, x) and torch.equal(m2, m)
        torch.testing.assert_close(b2, b)
    img1, b1, m1 = T.rot90(x, b, m, k)
    np.testing.assert_array_equal(m1.numpy(), np.rot90(mask, k))
    for box, i in zip(b1.numpy(), range(len(boxes))):
        np.testing.assert_allclose(box, _pixel_box(m1.numpy(), i + 1), atol=1e-3)
    img2, b2, m2 = T.rot90(img1, b1, m1, 4 - k)
    assert torch.equal(img2, x) and torch.equal(m2, m)
    torch.testing.assert_close(b2, b, atol=1e-3, rtol=0)


@SETTINGS
@given(scene=scenes(), cfg=configs(), seed=st.integers(0, 2**32 - 1))
def test_photometric_never_moves_anything(scene, cfg, seed):
    image, boxes, mask = scene
    cfg = dataclasses.replace(cfg, **NO_GEOMETRY)
    x = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    out_img, out_boxes, out_mask, keep = T.Augment(cfg)(x, boxes, mask, np.random.default_rng(seed))
    assert isinstance(out_img, torch.Tensor) and out_img.dtype == torch.uint8
    assert out_img.shape == x.shape
    assert torch.equal(out_mask, torch.from_numpy(mask))
    torch.testing.assert_close(out_boxes, torch.from_numpy(boxes))
    np.testing.assert_array_equal(keep, np.arange(len(boxes)))


@SETTINGS
@given(scene=scenes(), seed=st.integers(0, 2**32 - 1))
def test_identity_config_and_determinism(scene, seed):
    image, boxes, mask = scene
    ident = T.Augment(AugmentConfig(**NO_GEOMETRY, **NO_PHOTOMETRY))
    out = ident(image, boxes, mask, np.random.default_rng(seed))
    np.testing.assert_array_equal(out[0], image)
    np.testing.assert_array_equal(out[2], mask)
    aug = T.Augment(AugmentConfig(crop=0.5, blur=0.5), max_size=40)
    a = aug(image, boxes, mask, np.random.default_rng(seed))
    b = aug(image, boxes, mask, np.random.default_rng(seed))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


@SETTINGS
@given(scene=scenes(), alpha=st.lists(st.floats(0.5, 1.5), min_size=3, max_size=3),
       beta=st.lists(st.floats(-0.3, 0.3), min_size=3, max_size=3))
def test_stain_jitter(scene, alpha, beta):
    image = torch.from_numpy(scene[0]).permute(2, 0, 1).contiguous()
    assert torch.equal(T.stain_jitter(image, [1, 1, 1], [0, 0, 0]), image)
    out = T.stain_jitter(image, alpha, beta)
    assert out.dtype == torch.uint8 and out.shape == image.shape


def test_stain_matrices_and_direction():
    torch.testing.assert_close(T.RGB_FROM_HED @ T.HED_FROM_RGB, torch.eye(3), atol=1e-5, rtol=0)
    grey = torch.full((3, 4, 4), 180, dtype=torch.uint8)
    # more haematoxylin -> darker, and bluer than red (H absorbs red most)
    more_h = T.stain_jitter(grey, [1, 1, 1], [0.3, 0, 0]).float()
    assert (more_h < 180).all()
    assert more_h[0].mean() < more_h[2].mean()


def test_resize_longest():
    image = np.random.default_rng(0).integers(0, 256, (30, 45, 3), dtype=np.uint8)
    mask = np.zeros((30, 45), np.int64)
    mask[6:12, 9:18] = 3
    boxes = np.array([[9, 6, 18, 12]], np.float32)
    img, b, m, scale = T.resize_longest(image, boxes, mask, 90)
    assert img.shape == (60, 90, 3) and m.shape == (60, 90) and scale == 2.0
    np.testing.assert_allclose(b, boxes * 2)
    np.testing.assert_allclose(_pixel_box(m, 3), boxes[0] * 2)
    timg, tb, tm, tscale = T.resize_longest(torch.from_numpy(image).permute(2, 0, 1), boxes,
                                            None, 20)
    assert tuple(timg.shape) == (3, 13, 20) and tm is None and tscale == pytest.approx(20 / 45)
    np.testing.assert_allclose(tb.numpy(), boxes * [20 / 45, 13 / 30, 20 / 45, 13 / 30], rtol=1e-5)


def test_crop_reports_kept_indices():
    image = torch.zeros((3, 20, 20), dtype=torch.uint8)
    boxes = torch.tensor([[0, 0, 10, 10], [8, 8, 18, 18], [15, 0, 20, 5]], dtype=torch.float32)
    _, out, _, keep = T.crop(image, boxes, None, 5, 5, 10, 10, min_visibility=0.3)
    # box 0: 25/100 visible -> dropped; box 1: 49/100 -> kept; box 2: outside -> dropped
    np.testing.assert_array_equal(keep, [1])
    torch.testing.assert_close(out, torch.tensor([[3.0, 3.0, 10.0, 10.0]]))


@pytest.mark.parametrize("bad", [dict(hflip=1.5), dict(scale=(2.0, 1.0)), dict(crop_min=0.0),
                                 dict(blur_sigma=(0.0, 1.0)), dict(hue=0.7)])
def test_bad_config_is_an_error(bad):
    with pytest.raises(ValueError, match="augment."):
        T.Augment(AugmentConfig(**bad))
