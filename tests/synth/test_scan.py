"""Stitched scans: a tiled TIFF readable tile by tile, seamless bands, exact truth, seam cells."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from unihema.synth.layout import SmearSpec, plan_smear
from unihema.synth.scan import CELLS, INSTANCES, SCAN, _Bands, crosses_seam, write_scan
from unihema.synth.smear import render_layout

UM = 0.25
SEAM = 256
SPEC = SmearSpec(white_per_100_red=5, parasitaemia=0.05)


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    """A 900 x 1100 px scan (225 x 275 um) in 256-px tiles with 16 cells placed on seams."""
    out = tmp_path_factory.mktemp("scan")
    meta = write_scan(out, (900, 1100), um_per_px=UM, seed=7, spec=SPEC, seam=SEAM,
                      seam_cells=16, tile=256)
    cells = [json.loads(line) for line in (out / CELLS).read_text().splitlines()]
    with tifffile.TiffFile(out / INSTANCES) as tf:
        inst = tf.pages[0].asarray()
    return out, meta, cells, inst


def _tiles(path):
    """Decode a tiled TIFF one tile at a time: (tile index, array [th, tw, ...])."""
    with tifffile.TiffFile(path) as tf:
        page = tf.pages[0]
        assert page.is_tiled
        fh = tf.filehandle
        for i, (off, n) in enumerate(zip(page.dataoffsets, page.databytecounts)):
            fh.seek(off)
            data, _, shape = page.decode(fh.read(n), i)
            yield i, data.reshape(shape[1:] if len(shape) == 4 else shape)


def test_scan_is_a_tiled_tiff_readable_tile_by_tile(scan):
    out, meta, _, _ = scan
    with tifffile.TiffFile(out / SCAN) as tf:
        page = tf.pages[0]
        assert page.is_tiled and (page.tilelength, page.tilewidth) == (256, 256)
        assert page.shape == (900, 1100, 3) and page.compression == 8  # zlib / deflate
        assert json.loads(page.description)["um_per_px"] == UM
        assert page.resolution[0] == pytest.approx(1e4 / UM)
        whole = page.asarray()
    cols = -(-1100 // 256)
    n = 0
    for i, tile in _tiles(out / SCAN):
        y, x = (i // cols) * 256, (i % cols) * 256
        part = whole[y:y + 256, x:x + 256]
        assert tile.shape == (256, 256, 3)
        assert np.array_equal(tile[:part.shape[0], :part.shape[1]], part)
        n += 1
    assert n == cols * -(-900 // 256)
    assert meta["width"] == 1100 and meta["height"] == 900 and meta["tile"] == 256


def test_banded_painting_equals_one_whole_field(scan):
    """The scan's instance map is exactly that of the same layout painted in one piece."""
    _, meta, cells, inst = scan
    lay = plan_smear(1100 * UM, 900 * UM, 7, SPEC, seam_um=SEAM * UM, seam_cells=16)
    whole = render_layout(lay, UM)
    assert np.array_equal(inst.astype(np.int32), whole.instances)
    ref = {c["id"]: c for c in whole.cells}
    assert len(cells) == len(ref) == meta["cells"]
    for c in cells:
        mine = {k: v for k, v in c.items() if k not in ("on_seam", "seam_placed")}
        assert mine == ref[c["id"]]


def test_truth_matches_the_instance_map(scan):
    _, meta, cells, inst = scan
    area = np.bincount(inst.ravel().astype(np.int64), minlength=len(cells) + 1)
    for c in cells:
        assert c["area_px"] == area[c["id"]]
        ys, xs = np.nonzero(inst == c["id"])
        x0, y0, x1, y1 = c["box"]
        assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1
    lineages = meta["summary"]["lineages"]
    assert lineages["white blood cell"] > 3 and lineages["malaria parasite"] > 0
    assert sum(lineages.values()) == sum(c["inside"] >= 0.5 for c in cells)


def test_seam_cells_cross_the_seam_lines(scan):
    _, meta, cells, inst = scan
    assert meta["seam_lines"] == {"x": [256, 512, 768, 1024], "y": [256, 512, 768]}
    placed = [c for c in cells if c["seam_placed"]]
    assert len(placed) >= 12 and meta["seam_cells"] == len(placed)
    assert {c["lineage"] for c in placed} >= {"red blood cell", "white blood cell"}
    for c in placed:
        assert c["on_seam"]
        ys, xs = np.nonzero(inst == c["id"])
        split_x = any((xs < s).any() and (xs >= s).any() for s in meta["seam_lines"]["x"])
        split_y = any((ys < s).any() and (ys >= s).any() for s in meta["seam_lines"]["y"])
        assert split_x or split_y, c
    for c in cells:
        assert c["on_seam"] == crosses_seam(c["box"], meta["seam_lines"]["x"],
                                            meta["seam_lines"]["y"])
    assert meta["cells_on_seams"] == sum(c["on_seam"] for c in cells) > len(placed)


def test_tiles_are_painted_one_band_at_a_time():
    """The TIFF is fed by a generator: the first tile exists after painting one band only."""
    lay = plan_smear(512 * 0.5, 1024 * 0.5, 1)
    bands = _Bands(lay, 0.5, (1024, 512), 256, instances=True, progress=False)
    tiles = bands.tiles()
    first = next(tiles)
    assert first.shape == (256, 256, 3) and first.dtype == np.uint8
    assert bands.feet and max(b[3] for b, _ in bands.feet.values()) <= 256
    assert len(bands.instance_tiles) == 1
    rest = sum(1 for _ in tiles)
    assert rest == 2 * 4 - 1 and len(bands.instance_tiles) == 8


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="tile=100"):
        write_scan(tmp_path, 512, tile=100)
    with pytest.raises(ValueError, match="too small"):
        write_scan(tmp_path, 32)
