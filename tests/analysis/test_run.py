"""analyze(): a smear read tile by tile at the model's scale, every cell once, typed, measured
and summarised; the bad inputs a lab meets."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from tests.analysis.conftest import FIELD_UM_PER_PX, WHITE_TYPES, truth_detector
from unihema.analysis.run import THUMB_SIDE, analyze, model_um_per_px, resolve_inputs
from unihema.analysis.tiles import grid_for_model
from unihema.data.image_guard import ImageTooLargeError, set_pixel_limit
from unihema.synth.layout import NATIVE_UM_PER_PX


def _lineages(cells):
    return Counter(c.lineage for c in cells)


def test_every_cell_counted_once_across_seams_and_the_scale_estimated(tiny_pipe, small_field):
    a = analyze(tiny_pipe, small_field.image, progress=False,
                detections=truth_detector(small_field))
    truth = small_field.cells
    assert a.scale.source == "red cells" and a.scale.plausible
    assert a.scale.low <= FIELD_UM_PER_PX * 1.05 and a.scale.high >= FIELD_UM_PER_PX * 0.95
    assert abs(a.scale.um_per_px - FIELD_UM_PER_PX) < 0.05 * FIELD_UM_PER_PX
    f = a.fields[0]
    assert f.tiles > 4 and f.factor == pytest.approx(a.scale.um_per_px / NATIVE_UM_PER_PX)
    # cells crossing a tile border of the grid were seen by several tiles
    grid = grid_for_model(480, 360, tiny_pipe.image_size, 50, f.factor)
    seams = [t.box[2] for t in grid if t.box[2] < 480] + [t.box[3] for t in grid
                                                            if t.box[3] < 360]
    assert any(c["box"][0] < s < c["box"][2] or c["box"][1] < s < c["box"][3]
               for c in truth for s in seams)
    assert len(a.cells) == len(truth)
    assert _lineages(a.cells) == Counter(c["lineage"] for c in truth)
    found = sorted(tuple(np.round(c.box, 1)) for c in a.cells)
    assert found == sorted(tuple(np.round(c["box"], 1)) for c in truth)
    assert len({c.id for c in a.cells}) == len(a.cells) and set(a.thumbnails) == \
        {c.id for c in a.cells}
    # typed among the lineage's types, probabilities summing to one; white cells described
    for c in a.cells:
        if c.lineage == "white blood cell":
            assert set(c.probabilities) == set(WHITE_TYPES) and c.type in WHITE_TYPES
            assert sum(c.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
            assert c.attributes
        assert 0.0 <= c.uncertainty <= 1.0 and c.needs_review == bool(c.reason)
        if c.measurements is not None:
            assert c.measurements.area_px > 0 and c.measurements.eq_diameter_um is not None
    s = a.summary
    assert s.is_smear and s.n_cells == len(truth) and s.n_fields == 1
    assert s.differential_n == _lineages(a.cells)["white blood cell"]
    assert s.parasitaemia is not None and s.parasitaemia.count > 0
    assert {"decode", "scale", "detect", "type", "merge", "summary", "total"} <= set(a.timings)


def test_a_given_scale_rescales_tiles_and_boxes_stay_in_image_pixels(tiny_pipe, small_field):
    a = analyze(tiny_pipe, small_field.image, um_per_px=FIELD_UM_PER_PX, progress=False,
                detections=truth_detector(small_field))
    assert a.scale.source == "given" and a.fields[0].factor == pytest.approx(
        FIELD_UM_PER_PX / model_um_per_px(tiny_pipe))
    assert len(a.cells) == len(small_field.cells)
    # each cell's picture is centred on it: a white cell's centre is dark (its nucleus or
    # cytoplasm), the background of the smear is light
    white = [c for c in a.cells if c.lineage == "white blood cell"]
    pictures = [np.asarray(Image.open(io.BytesIO(a.thumbnails[c.id]))) for c in white]
    assert white and all(p.shape == (THUMB_SIDE, THUMB_SIDE, 3) for p in pictures)
    centre = np.mean([p[24:40, 24:40].mean() for p in pictures])
    corner = np.mean([p[:4, :4].mean() for p in pictures])
    assert centre < corner - 20


def test_the_model_reads_a_field_end_to_end(tiny_pipe, small_field):
    """No injection: the random model detects, types, segments; the plumbing holds."""
    a = tiny_pipe.analyze(small_field.image, um_per_px=FIELD_UM_PER_PX, progress=False,
                          min_score=0.3)
    assert a.cells, "a random model finds random cells at a low threshold"
    for c in a.cells:
        x0, y0, x1, y1 = c.box
        assert 0 <= x0 < x1 <= 480 and 0 <= y0 < y1 <= 360
        assert c.lineage in ("red blood cell", "white blood cell", "platelet")
        assert sum(c.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert a.summary.n_cells == len(a.cells)
    assert a.timings["detect"] > 0 and a.timings["total"] >= a.timings["detect"]


def test_a_field_without_cells_gives_an_empty_valid_analysis(tiny_pipe):
    blank = np.full((200, 300, 3), 235, np.uint8)
    a = analyze(tiny_pipe, blank, progress=False, min_score=1.0)
    assert a.cells == [] and a.summary.n_cells == 0 and a.fields[0].n_cells == 0
    assert not a.summary.is_smear and "no_cells" in a.summary.flags
    assert a.summary.differential is None and a.summary.platelets is None
    assert a.scale.um_per_px is None and not a.scale.plausible


def test_an_implausible_scale_is_reported_instead_of_counts(tiny_pipe, small_field):
    a = analyze(tiny_pipe, small_field.image, um_per_px=5.0, progress=False,
                detections=truth_detector(small_field))
    s = a.summary
    assert not s.is_smear and "scale_implausible" in s.flags
    assert s.differential is None and s.parasitaemia is None and s.red_morphology is None
    assert any("implausible" in m for m in s.messages)


def test_an_image_too_large_to_decode_names_its_size_and_suggests_a_tiled_tiff(tiny_pipe,
                                                                              tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (400, 300), (230, 200, 200)).save(path)
    set_pixel_limit(100_000)
    try:
        with pytest.raises(ImageTooLargeError, match=r"400x300.*tiled TIFF"):
            analyze(tiny_pipe, path, progress=False)
    finally:
        set_pixel_limit(None)


def test_16_bit_rgba_and_tiled_tiff_inputs_give_the_same_cells(tiny_pipe, small_field,
                                                               tmp_path):
    import tifffile

    img = small_field.image
    det = truth_detector(small_field)
    ref = analyze(tiny_pipe, img, um_per_px=0.2, progress=False, detections=det)
    deep = tmp_path / "deep.tif"
    tifffile.imwrite(deep, img.astype(np.uint16) * 257)
    tiled = tmp_path / "tiled.tif"
    tifffile.imwrite(tiled, img, tile=(64, 64))
    rgba = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], -1)
    for source in (deep, tiled, rgba):
        a = analyze(tiny_pipe, source, um_per_px=0.2, progress=False, detections=det)
        assert [c.box for c in a.cells] == [c.box for c in ref.cells]
        assert [c.type for c in a.cells] == [c.type for c in ref.cells]


def test_several_fields_of_one_smear(tiny_pipe, small_field, tmp_path):
    for name in ("b.png", "a.png"):
        Image.fromarray(small_field.image).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    assert [n for n, _ in resolve_inputs(tmp_path)] == ["a.png", "b.png"]
    a = analyze(tiny_pipe, [tmp_path], um_per_px=0.2, progress=False,
                detections=truth_detector(small_field))
    n = len(small_field.cells)
    assert a.summary.n_fields == 2 and len(a.cells) == 2 * n
    assert Counter(c.field for c in a.cells) == {"a.png": n, "b.png": n}
    assert len({c.id for c in a.cells}) == 2 * n
    with pytest.raises(ValueError, match="no images"):
        resolve_inputs(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else None)
