"""Full-size fields: the truth matches the pixels, at every magnification, and on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from unihema.synth.layout import SmearSpec, plan_smear
from unihema.synth.smear import make_field, render_layout, render_magnifications, write_field

SPEC = SmearSpec(red_mix={"schistocyte": 0.05, "target cell": 0.1}, white_per_100_red=4,
                 parasitaemia=0.08)
SEM = {"red blood cell": {1}, "white blood cell": {2, 3}, "platelet": {4}, "malaria parasite": {5}}


@pytest.fixture(scope="module")
def field():
    """A 480x360 field at 0.25 um/px (120 x 90 um, ~100 red cells)."""
    return make_field(480, 360, um_per_px=0.25, seed=4, spec=SPEC)


def test_every_truth_box_holds_its_cells_pixels(field):
    inst, mask = field.instances, field.mask
    assert field.image.shape == (360, 480, 3) and field.image.dtype == np.uint8
    ids = {c["id"] for c in field.cells}
    assert set(np.unique(inst)) - {0} <= ids
    area = np.bincount(inst.ravel(), minlength=max(ids) + 1)
    for c in field.cells:
        x0, y0, x1, y1 = c["box"]
        assert 0 <= x0 < x1 <= 480 and 0 <= y0 < y1 <= 360
        ys, xs = np.nonzero(inst == c["id"])
        assert c["area_px"] == area[c["id"]] == len(ys)
        if len(ys):
            assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1
            assert set(np.unique(mask[ys, xs])) <= SEM[c["lineage"]]
        assert 0 < c["inside"] <= 1 and 0 <= c["visible"] <= 1


def test_counts_and_infection_are_consistent(field):
    s = field.summary()
    counted = [c for c in field.cells if c["inside"] >= 0.5]
    for lineage, n in s["lineages"].items():
        assert n == sum(c["lineage"] == lineage for c in counted)
    assert s["white_cells"] >= 3 and abs(sum(s["differential"].values()) - 100) < 0.01
    by_id = {c["id"]: c for c in field.cells}
    parasites = [c for c in field.cells if c["lineage"] == "malaria parasite"]
    assert parasites and all(by_id[p["host"]]["infected"] for p in parasites)
    for red in (c for c in field.cells if c.get("infected")):
        p = by_id[red["malaria parasite"]]
        assert p["host"] == red["id"]
        hb, pb = red["box"], p["box"]
        assert hb[0] <= pb[0] and hb[1] <= pb[1] and pb[2] <= hb[2] and pb[3] <= hb[3]
    infected = sum(c.get("infected", False) for c in counted)
    assert s["parasitaemia"] == pytest.approx(100 * infected / s["red_cells"], abs=1e-3)
    assert s["infected_red_cells"] == infected > 0


def test_a_red_cell_is_about_7_5_um_across(field):
    d = [2 * np.sqrt(c["area_px"] / np.pi) for c in field.cells
         if c["type"] == "red blood cell" and c["visible"] > 0.97 and c["inside"] == 1]
    assert len(d) > 20
    assert np.median(d) * field.um_per_px == pytest.approx(7.5, rel=0.05)


def test_same_content_at_half_one_and_two_times():
    lay = plan_smear(64, 48, seed=9, spec=SPEC)
    fields = render_magnifications(lay, um_per_px=0.2, factors=(0.5, 1.0, 2.0))
    base = {c["id"]: c for c in fields[1.0].cells if c["inside"] == 1}
    assert fields[0.5].image.shape[:2] == (120, 160) and fields[2.0].image.shape[:2] == (480, 640)
    assert len(base) > 10
    for f in (0.5, 2.0):
        other = {c["id"]: c for c in fields[f].cells}
        for cid, c in base.items():
            o = other[cid]
            assert (o["type"], o["attributes"]) == (c["type"], c["attributes"])
            scaled = np.asarray(c["box"], float) * f
            assert np.abs(np.asarray(o["box"]) - scaled).max() <= 1 + 1.5 * f
            ratio = o["area_px"] / max(1, c["area_px"]) / (f * f)
            assert 0.75 < ratio < 1.3, (cid, c["type"], ratio)
        assert fields[f].summary()["lineages"] == fields[1.0].summary()["lineages"]


def test_fields_are_deterministic():
    a = make_field(160, 120, um_per_px=0.25, seed=2)
    b = make_field(160, 120, um_per_px=0.25, seed=2)
    assert np.array_equal(a.image, b.image) and a.cells == b.cells


def test_write_field_round_trips(tmp_path, field):
    meta = write_field(tmp_path, field, name="f1")
    img = np.asarray(Image.open(tmp_path / "f1.png"))
    inst = np.asarray(Image.open(tmp_path / "f1_instances.png"))
    mask = np.asarray(Image.open(tmp_path / "f1_mask.png"))
    assert np.array_equal(img, field.image) and np.array_equal(mask, field.mask)
    assert np.array_equal(inst.astype(np.int32), field.instances)
    lines = (tmp_path / "f1_cells.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == json.loads(json.dumps(field.cells))
    on_disk = json.loads((tmp_path / "f1.json").read_text())
    assert on_disk["um_per_px"] == 0.25 and on_disk["width"] == 480 and on_disk == meta
    assert on_disk["summary"]["lineages"] == field.summary()["lineages"]


def test_bad_scales_are_refused():
    lay = plan_smear(20, 20, seed=0)
    with pytest.raises(ValueError, match="um_per_px=5"):
        render_layout(lay, 5)
