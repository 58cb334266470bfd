"""Image and mask decoding: every format to uint8 RGB, strict errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile

from unihema.data.catalog import DataError
from unihema.data.io import (ImageReadError, crop_image_path, image_size, read_image,
                             read_mask)

H, W = 12, 17


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _check_rgb(arr: np.ndarray) -> None:
    assert arr.dtype == np.uint8 and arr.shape == (H, W, 3) and arr.flags.c_contiguous


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_lossless_rgb_round_trip(tmp_path, rgb, suffix):
    path = tmp_path / f"img{suffix}"
    Image.fromarray(rgb).save(path)
    out = read_image(path)
    _check_rgb(out)
    np.testing.assert_array_equal(out, rgb)
    assert image_size(path) == (W, H)


def test_jpeg(tmp_path):
    smooth = np.zeros((H, W, 3), np.uint8) + np.array([200, 100, 50], np.uint8)
    path = tmp_path / "img.jpg"
    Image.fromarray(smooth).save(path, quality=95)
    out = read_image(path)
    _check_rgb(out)
    assert np.abs(out.astype(int) - smooth).max() <= 3


def test_rgba_composited_over_white(tmp_path, rgb):
    alpha = np.zeros((H, W), np.uint8)
    alpha[:, : W // 2] = 255
    alpha[0, -1] = 128
    path = tmp_path / "img.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
    out = read_image(path)
    _check_rgb(out)
    np.testing.assert_array_equal(out[:, : W // 2], rgb[:, : W // 2])
    assert (out[1:, W // 2:] == 255).all()
    half = np.round(rgb[0, -1] * (128 / 255) + 255 * (127 / 255))
    np.testing.assert_allclose(out[0, -1], half, atol=1)


def test_gray_replicated(tmp_path, rgb):
    gray = rgb[..., 0]
    for mode, arr in (("L", gray), ("LA", np.dstack([gray, np.full_like(gray, 255)]))):
        path = tmp_path / f"g_{mode}.png"
        Image.fromarray(arr, mode).save(path)
        out = read_image(path)
        _check_rgb(out)
        for c in range(3):
            np.testing.assert_array_equal(out[..., c], gray)


def test_gray16_png_scaled_by_bit_depth(tmp_path):
    # A dim 16-bit image must stay dim: scaling is by bit depth, never by the image maximum.
    g16 = np.random.default_rng(1).integers(0, 4000, (H, W), dtype=np.uint16)
    g16[0, 0], g16[0, 1] = 0, 257 * 3
    path = tmp_path / "g16.png"
    Image.fromarray(g16).save(path)
    assert Image.open(path).mode.startswith("I;16")
    out = read_image(path)
    _check_rgb(out)
    np.testing.assert_array_equal(out[..., 1], np.round(g16 / 257).astype(np.uint8))
    assert out[0, 0, 0] == 0 and out[0, 1, 0] == 3


@pytest.mark.parametrize("planar", ["contig", "separate"])
def test_rgb16_tiff(tmp_path, planar):
    rgb16 = np.random.default_rng(2).integers(0, 65536, (H, W, 3), dtype=np.uint16)
    path = tmp_path / f"rgb16_{planar}.tif"
    data = rgb16 if planar == "contig" else np.moveaxis(rgb16, -1, 0)
    tifffile.imwrite(path, data, photometric="rgb", planarconfig=planar)
    out = read_image(path)
    _check_rgb(out)
    np.testing.assert_array_equal(out, np.round(rgb16 / 257).astype(np.uint8))
    assert image_size(path) == (W, H)


def test_palette_and_float_modes(tmp_path, rgb):
    pal = Image.fromarray(rgb).quantize(colors=8)
    path = tmp_path / "p.png"
    pal.save(path)
    out = read_image(path)
    _check_rgb(out)
    np.testing.assert_array_equal(out, np.asarray(pal.convert("RGB")))
    f32 = (rgb[..., 0] / 255.0).astype(np.float32)
    path = tmp_path / "f.tif"
    Image.fromarray(f32, "F").save(path)
    np.testing.assert_array_equal(read_image(path)[..., 2], rgb[..., 0])


def test_exif_orientation_not_applied(tmp_path, rgb):
    path = tmp_path / "rot.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(rgb).save(path, exif=exif, quality=95)
    assert read_image(path).shape == (H, W, 3)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_raises_naming_file(tmp_path, rgb, suffix):
    good = tmp_path / f"good{suffix}"
    big = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(big).save(good)
    data = good.read_bytes()
    bad = tmp_path / f"truncated{suffix}"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=f"truncated{suffix}"):
        read_image(bad)
    # ...even when some other code asked Pillow to accept truncated files
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(ImageReadError, match="truncated"):
            read_image(bad)
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False


def test_crop_window(tmp_path, rgb):
    path = tmp_path / "field.png"
    Image.fromarray(rgb).save(path)
    window = crop_image_path(path, (3, 2, 10, 12))
    assert window == f"{path}::crop/3,2,10,12" and image_size(window) == (7, 10)
    out = read_image(window)
    np.testing.assert_array_equal(out, rgb[2:12, 3:10])
    out[:] = 0  # a copy: the cached field is untouched
    np.testing.assert_array_equal(read_image(window), rgb[2:12, 3:10])
    for box in ((3, 2, 18, 12), (-1, 0, 4, 4), (5, 5, 5, 9)):
        for reader in (read_image, image_size):
            with pytest.raises(ImageReadError, match=r"field\.png::crop/.*not inside the 17x12"):
                reader(crop_image_path(path, box))
    with pytest.raises(ImageReadError, match="gone.png"):
        read_image(crop_image_path(tmp_path / "gone.png", (0, 0, 2, 2)))

@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the garbage TIFF header
def test_corrupt_missing_and_directory(tmp_path):
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG not really" * 8)
    with pytest.raises(ImageReadError, match="corrupt.png"):
        read_image(bad)
    with pytest.raises(ImageReadError, match="corrupt.png"):
        image_size(bad)
    bad_tif = tmp_path / "corrupt.tif"
    bad_tif.write_bytes(b"II*\x00garbage" * 4)
    with pytest.raises(ImageReadError, match="corrupt.tif"):
        read_image(bad_tif)
    with pytest.raises(ImageReadError, match="missing.jpg.*not found"):
        read_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageReadError, match="not a regular file"):
        read_image(tmp_path)
    assert issubclass(ImageReadError, DataError)


# ----------------------------------------------------------------------------- masks
VALUES = {0: "background", 128: "cytoplasm", 255: "nucleus"}
CLASSES = ["background", "cytoplasm", "nucleus"]


@pytest.fixture
def raw_mask() -> np.ndarray:
    m = np.zeros((H, W), np.uint8)
    m[2:8, 3:10] = 128
    m[4:6, 5:8] = 255
    return m


def _expected(raw: np.ndarray) -> np.ndarray:
    return np.select([raw == 128, raw == 255], [1, 2], 0).astype(np.int64)


def test_read_mask_modes(tmp_path, raw_mask):
    expected = _expected(raw_mask)
    l_path = tmp_path / "l.png"
    Image.fromarray(raw_mask, "L").save(l_path)
    rgb_path = tmp_path / "rgb.png"
    Image.fromarray(np.dstack([raw_mask] * 3)).save(rgb_path)
    i16_path = tmp_path / "i16.png"
    Image.fromarray(raw_mask.astype(np.uint16)).save(i16_path)
    for path in (l_path, rgb_path, i16_path):
        out = read_mask(path, VALUES, CLASSES)
        assert out.dtype == np.int64 and out.shape == (H, W)
        np.testing.assert_array_equal(out, expected)
    # P mode: the palette index is the value, whatever colour the palette gives it
    idx = np.select([raw_mask == 128, raw_mask == 255], [1, 2], 0).astype(np.uint8)
    p_img = Image.fromarray(idx, "P")
    p_img.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    p_path = tmp_path / "p.png"
    p_img.save(p_path)
    out = read_mask(p_path, {0: "background", 1: "cytoplasm", 2: "nucleus"}, CLASSES)
    np.testing.assert_array_equal(out, expected)


def test_read_mask_unexpected_value_names_file_and_values(tmp_path, raw_mask):
    raw_mask[0, 0] = 77
    path = tmp_path / "odd_mask.png"
    Image.fromarray(raw_mask).save(path)
    with pytest.raises(ImageReadError) as err:
        read_mask(path, VALUES, CLASSES)
    msg = str(err.value)
    assert "odd_mask.png" in msg and "[77]" in msg and "[0, 128, 255]" in msg


def test_read_mask_class_not_in_list_and_colour_mask(tmp_path, raw_mask):
    path = tmp_path / "m.png"
    Image.fromarray(raw_mask).save(path)
    with pytest.raises(ValueError, match="nucleus"):
        read_mask(path, VALUES, ["background", "cytoplasm"])
    colour = np.dstack([raw_mask, raw_mask, np.zeros_like(raw_mask)])
    Image.fromarray(colour).save(path)
    with pytest.raises(ImageReadError, match="unequal channels"):
        read_mask(path, VALUES, CLASSES)
