"""Tiling: the grid covers the image with the overlap asked, cores partition it, sources read
windows exactly, and a tiled TIFF is read tile by tile without ever being decoded whole."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from unihema.analysis.tiles import (ArraySource, TiledTiffSource, TileGrid, boxes_to_global,
                                    grid_for_model, iter_tiles, open_source, rescale_tile,
                                    scale_factor, tile_starts)
from unihema.data.image_guard import ImageTooLargeError, set_pixel_limit
from unihema.data.io import read_image


@pytest.fixture
def pixel_limit():
    """Set the pixel limit for one test, restoring the default afterwards."""
    yield set_pixel_limit
    set_pixel_limit(None)


def _image(h: int, w: int, seed: int = 0, dtype=np.uint8, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = 255 if dtype == np.uint8 else 65535
    return rng.integers(0, top + 1, (h, w, channels), dtype=dtype)


@pytest.mark.parametrize("length,tile,overlap", [
    (1000, 256, 64), (257, 256, 64), (256, 256, 64), (100, 256, 64), (20000, 1024, 128),
    (999, 100, 99), (513, 128, 0)])
def test_starts_cover_the_axis_with_the_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0
    assert min(starts[-1] + tile, length) == length
    for a, b in zip(starts, starts[1:]):
        assert a < b
        assert a + tile - b >= overlap  # consecutive tiles overlap by at least `overlap`


def test_grid_tiles_cores_and_owner():
    grid = TileGrid(1000, 700, 256, 64)
    tiles = grid.tiles()
    assert len(tiles) == len(grid) == grid.shape[0] * grid.shape[1]
    covered = np.zeros((700, 1000), int)
    for t in tiles:
        x0, y0, x1, y1 = t.box
        assert 0 <= x0 < x1 <= 1000 and 0 <= y0 < y1 <= 700
        assert x1 - x0 <= 256 and y1 - y0 <= 256
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1
    # cores partition the image: every pixel centre is owned by exactly one tile
    rng = np.random.default_rng(0)
    for x, y in rng.uniform(0, [1000, 700], size=(500, 2)):
        owners = [t.index for t in tiles if t.owns(x, y)]
        assert owners == [grid.owner(x, y)]
        # ... and the owner's core keeps half the overlap from the tile's inner edges
        t = tiles[owners[0]]
        assert t.box[0] <= x < t.box[2] and t.box[1] <= y < t.box[3]


def test_grid_rejects_bad_parameters():
    with pytest.raises(ValueError, match="overlap < tile"):
        TileGrid(100, 100, 64, 64)
    with pytest.raises(ValueError, match="positive"):
        TileGrid(0, 100, 64, 8)


def test_small_image_gets_one_clipped_tile():
    grid = TileGrid(90, 60, 256, 64)
    assert [t.box for t in grid] == [(0, 0, 90, 60)]


def test_array_source_reads_windows_of_any_depth():
    img = _image(120, 150)
    tiles = list(iter_tiles(ArraySource(img), TileGrid(150, 120, 64, 16)))
    for t in tiles:
        x0, y0, x1, y1 = t.tile.box
        np.testing.assert_array_equal(t.image, img[y0:y1, x0:x1])
    deep = _image(40, 50, dtype=np.uint16)
    win = ArraySource(deep).read((5, 6, 30, 36))
    assert win.dtype == np.uint8 and win.shape == (30, 25, 3)
    np.testing.assert_array_equal(win, np.round(deep[6:36, 5:30] / 257.0).astype(np.uint8))
    rgba = np.zeros((10, 10, 4), np.uint8)  # fully transparent: white glass
    assert (ArraySource(rgba).read((0, 0, 10, 10)) == 255).all()
    grey = Image.fromarray(_image(20, 30, channels=1)[:, :, 0])
    assert ArraySource(grey).read((0, 0, 30, 20)).shape == (20, 30, 3)
    with pytest.raises(ValueError, match="outside"):
        ArraySource(img).read((0, 0, 151, 10))


def test_tiled_tiff_is_read_tile_by_tile_never_whole(tmp_path, pixel_limit):
    img = _image(700, 900, seed=1)
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, img, tile=(64, 64), compression="zlib")
    # a limit far below the image (630,000 px) but above one grid tile's TIFF tiles
    pixel_limit(5 * 5 * 64 * 64)
    with pytest.raises(ImageTooLargeError, match="900x700"):
        read_image(path)  # decoding it whole is refused ...
    grid = TileGrid(900, 700, 256, 64)
    with open_source(path) as src:  # ... while reading it tile by tile works
        assert isinstance(src, TiledTiffSource)
        for t in iter_tiles(src, grid):
            x0, y0, x1, y1 = t.tile.box
            np.testing.assert_array_equal(t.image, img[y0:y1, x0:x1])
        per_tile = src.decoded_pixels / len(grid)
        assert per_tile <= 25 * 64 * 64
        with pytest.raises(ImageTooLargeError, match="smaller windows"):
            src.read((0, 0, 900, 700))


def test_tiled_tiff_16bit_planar_and_rgba(tmp_path):
    deep = _image(130, 200, seed=2, dtype=np.uint16)
    path = tmp_path / "deep.tif"
    tifffile.imwrite(path, np.moveaxis(deep, -1, 0), tile=(32, 32), planarconfig="separate",
                     photometric="rgb")
    with open_source(path) as src:
        assert src.planar
        win = src.read((10, 20, 150, 110))
    np.testing.assert_array_equal(win, np.round(deep[20:110, 10:150] / 257.0).astype(np.uint8))
    rgba = _image(64, 64, seed=3, channels=4)
    rgba[..., 3] = 255
    path = tmp_path / "rgba.tif"
    tifffile.imwrite(path, rgba, tile=(32, 32), extrasamples=["unassalpha"])
    with open_source(path) as src:
        np.testing.assert_array_equal(src.read((0, 0, 64, 64)), rgba[..., :3])


def test_untiled_files_decode_under_the_limit_and_refuse_above(tmp_path, pixel_limit):
    img = _image(300, 410, seed=4)
    png, strips = tmp_path / "field.png", tmp_path / "strips.tif"
    Image.fromarray(img).save(png)
    tifffile.imwrite(strips, img)  # a strip TIFF
    for path in (png, strips):
        src = open_source(path)
        assert isinstance(src, ArraySource)
        np.testing.assert_array_equal(src.read((0, 0, 410, 300)), img)
    pixel_limit(100_000)
    for path in (png, strips):
        with pytest.raises(ImageTooLargeError, match=r"410x300 .*tiled TIFF"):
            open_source(path)


def test_scale_factor_and_rescaling_round_trip():
    assert scale_factor(0.1, 0.2) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        scale_factor(0, 0.2)
    grid = grid_for_model(4000, 3000, model_tile=512, model_overlap=64, factor=0.5)
    assert (grid.tile, grid.overlap) == (1024, 128)
    tile = _image(101, 203)
    small, (fx, fy) = rescale_tile(tile, 0.5)
    assert small.shape == (50, 102, 3)
    assert (fx, fy) == (102 / 203, 50 / 101)
    # a box found on the rescaled tile maps back to the global image
    model_box = np.array([[10.0, 5.0, 30.0, 25.0]])
    back = boxes_to_global(model_box, (1000, 2000, 1203, 2101), (fx, fy))
    np.testing.assert_allclose(back, [[1000 + 10 / fx, 2000 + 5 / fy, 1000 + 30 / fx,
                                       2000 + 25 / fy]])
    same, f = rescale_tile(tile, 1.0)
    assert same is tile and f == (1.0, 1.0)
