"""The smear generator: determinism, complete and consistent truth, visible attributes."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, deque
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unihema.config.schema import SynthConfig
from unihema.data import vocab
from unihema.data.text import language
from unihema.data.sample import UnifiedSample
from unihema.synth import (DETECT_CLASSES, MASK_VALUES, RED_MORPHOLOGIES, WHITE_TYPES,
                           generate_dataset, render_field)
from unihema.synth import cells
from unihema.synth.writer import field_seed

SMALL = SynthConfig(size=128, train=6, val=2, test=2, seed=3, workers=1)
SEM_OF = {"red": {1}, "white": {2, 3}, "platelet": {4}, "ring form": {5}}


def _kind(label: str) -> str:
    if label in RED_MORPHOLOGIES:
        return "red"
    if label in WHITE_TYPES:
        return "white"
    return label


def _files(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def fields():
    """40 fields at the default size (renders in ~1 s) and their truth."""
    cfg = SynthConfig()
    return [render_field(field_seed(11, "train", i), cfg) for i in range(40)]


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth_small")
    generate_dataset(root, SMALL, progress=False)
    return root


# ----------------------------------------------------------------------------- determinism
def test_render_is_deterministic_per_seed():
    a, b, c = render_field(5, SMALL), render_field(5, SMALL), render_field(6, SMALL)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.boxes, b.boxes) and a.labels == b.labels and a.qa == b.qa
    assert a.report == b.report and len(a.crops) == len(b.crops)
    assert not np.array_equal(a.image, c.image)


def test_generate_is_byte_identical_across_workers(small_root, tmp_path):
    two = tmp_path / "two"
    generate_dataset(two, SynthConfig(**{**SMALL.__dict__, "workers": 2}), progress=False)
    a, b = _files(small_root), _files(two)
    assert a.keys() == b.keys()
    # the manifest records the worker count; everything else must match byte for byte
    assert [k for k in a if a[k] != b[k]] == ["manifest.json"]
    other = tmp_path / "other"
    generate_dataset(other, SynthConfig(**{**SMALL.__dict__, "seed": 4}), progress=False)
    c = _files(other)
    assert a["train/images/train_000000.png"] != c["train/images/train_000000.png"]


def test_splits_never_share_a_field(small_root):
    digest = {s: {hashlib.sha1(p.read_bytes()).hexdigest()
                  for p in (small_root / s / "images").glob("*.png")} for s in ("train", "test")}
    assert len(digest["train"]) == 6 and len(digest["test"]) == 2
    assert not digest["train"] & digest["test"]


def test_manifest_and_layout(small_root):
    m = json.loads((small_root / "manifest.json").read_text())
    assert m["generator"] == "unihema.synth" and m["version"] == 1
    assert m["splits"] == {"train": 6, "val": 2, "test": 2}
    assert m["mask_values"] == {str(k): v for k, v in MASK_VALUES.items()}
    assert m["config"]["size"] == 128 and set(m["classes"]) >= {"detect", "segment"}
    for split, n in m["splits"].items():
        lines = (small_root / split / "fields.jsonl").read_text().splitlines()
        crops = (small_root / split / "crops.jsonl").read_text().splitlines()
        assert len(lines) == n and len(crops) == m["crops"][split]
        for line in lines + crops:
            rec = json.loads(line)
            assert not Path(rec["image_path"]).is_absolute()
            assert (small_root / rec["image_path"]).is_file()
    assert not list(small_root.rglob(".*tmp*"))  # no temporary file left behind


# ----------------------------------------------------------------------------- supervision
def test_every_task_is_supervised(small_root):
    samples = [UnifiedSample.from_dict(json.loads(line))
               for s in ("train", "val", "test") for name in ("fields.jsonl", "crops.jsonl")
               for line in (small_root / s / name).read_text().splitlines()]
    field_samples = [s for s in samples if s.meta["kind"] == "field"]
    crops = [s for s in samples if s.meta["kind"] == "crop"]
    assert len(field_samples) == 10 and crops
    for s in samples:
        assert s.validate() == [], s.key
        assert s.meta["generator"] == "unihema.synth" and s.meta["license"].startswith("CC0")
    for s in field_samples:
        assert {"detect", "segment", "mlm", "vqa"} <= set(s.tasks())
        assert len(s.box_attributes) == s.num_boxes and s.width == s.height == 128
        mask = np.asarray(Image.open(Path(small_root) / s.mask_path))
        assert mask.dtype == np.uint8 and mask.shape == (128, 128) and mask.max() <= 5
    for s in crops:
        assert s.label in s.label_set and s.report and s.width == s.height == SMALL.crop_size
        assert ("morphology" in s.tasks()) == (s.label in WHITE_TYPES)
    assert any(s.label in WHITE_TYPES for s in crops)


def test_boxes_hold_their_pixels_and_mask_classes(fields):
    for f in fields:
        assert set(np.unique(f.mask)) <= set(MASK_VALUES)
        assert f.boxes.shape == (len(f.labels), 4)
        for k, (box, label) in enumerate(zip(f.boxes, f.labels)):
            ys, xs = np.nonzero(f.instances == k + 1)
            assert ys.size > 0, f"box {k} ({label}) has no visible pixel"
            x0, y0, x1, y1 = box
            assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256
            assert x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1
            assert set(np.unique(f.mask[ys, xs])) <= SEM_OF[_kind(label)]
            if _kind(label) == "white":  # drawn on top: the box is tight around its pixels
                assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            if label == "ring form":  # inside its host red cell
                hx0, hy0, hx1, hy1 = f.boxes[f.box_info[k]["host"]]
                assert hx0 <= x0 and hy0 <= y0 and x1 <= hx1 and y1 <= hy1


def test_counts_types_and_attributes(fields):
    reds = [sum(lab in RED_MORPHOLOGIES for lab in f.labels) for f in fields]
    assert all(0 <= n <= 60 for n in reds) and max(reds) >= 30
    seen_white = {lab for f in fields for lab in f.labels if lab in WHITE_TYPES}
    seen_red = {lab for f in fields for lab in f.labels if lab in RED_MORPHOLOGIES}
    assert len(seen_white) >= 8, seen_white
    assert len(seen_red) >= 6, seen_red
    assert any("platelet" in f.labels for f in fields)
    assert any("ring form" in f.labels for f in fields)
    for f in fields:
        for lab, a in zip(f.labels, f.box_attributes):
            if lab in WHITE_TYPES:
                assert set(a) == set(vocab.ATTRIBUTES) and vocab.check_attributes(a) == []
                assert (a["granularity"] == "no") == (a["granule_type"] == "nil")
                assert (a["granule_type"] == "nil") == (a["granule_colour"] == "nil")
            else:
                assert a == {}


def test_qa_and_report_agree_with_boxes(fields):
    for f in fields:
        qa = {q.question: q.answer for q in f.qa}
        # group terms count their members: "red blood cells" includes target cells
        n = {c: sum(vocab.is_a(lab, c) for lab in f.labels) for c in DETECT_CLASSES}
        whites = [i for i, lab in enumerate(f.labels) if lab in WHITE_TYPES]
        for c in DETECT_CLASSES:
            q = language.qa_count(c, 0).question
            if q in qa:
                assert qa[q] == str(n[c]), (q, qa[q], n[c])
            q = language.qa_presence(c, True).question
            if q in qa:
                assert qa[q] == ("yes" if n[c] else "no")
        assert qa[language.qa_count("white blood cell", 0).question] == str(len(whites))
        assert f.counts == {c: k for c, k in Counter(f.labels).items()}
        if len(whites) == 1:
            i = whites[0]
            assert qa[language.qa_type("white blood cell", "").question] == f.labels[i]
            x0, y0, x1, y1 = f.boxes[i]
            where = language.location_name((x0 + x1) / 2, (y0 + y1) / 2, 256, 256)
            assert qa[language.qa_location("white blood cell", "").question] == where
        assert qa[language.qa_presence("malaria parasite", True).question] == (
            "yes" if n["ring form"] else "no")
        reading = sorted(whites, key=lambda i: (f.boxes[i, 1] + f.boxes[i, 3], f.boxes[i, 0]))
        assert f.report == language.describe_field(
            {"red blood cell": n["red blood cell"], "white blood cell": len(whites),
             "platelet": n["platelet"]},
            infected=n["ring form"],
            white_cells=[f.labels[i] for i in reading],
            red_morphologies={c: n[c] for c in RED_MORPHOLOGIES if c != "red blood cell"})


def test_crops(fields):
    for f in fields:
        whites = [i for i, lab in enumerate(f.labels) if lab in WHITE_TYPES]
        assert sorted(c.box_index for c in f.crops if c.label in WHITE_TYPES) == whites
        assert sum(c.label in RED_MORPHOLOGIES for c in f.crops) <= 3
        for c in f.crops:
            assert c.image.shape == (96, 96, 3) and c.image.dtype == np.uint8
            assert c.label == f.labels[c.box_index]
            if c.label in WHITE_TYPES:
                assert c.attributes == f.box_attributes[c.box_index]
                assert c.report == language.describe_cell(c.label, c.attributes)
                assert c.qa[0].answer == c.label and len(c.qa) == 1 + len(vocab.ATTRIBUTES)
            else:
                assert c.attributes is None and c.label_set == list(RED_MORPHOLOGIES)


def test_domain_knob_changes_only_the_look():
    a = render_field(9, SynthConfig(domain=0.0))
    b = render_field(9, SynthConfig(domain=1.0))
    assert np.array_equal(a.mask, b.mask) and np.array_equal(a.boxes, b.boxes)
    assert b.meta["optics"]["blur"] > a.meta["optics"]["blur"]
    assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() > 5


# ----------------------------------------------------------------------------- visible attributes
def _white(seed: int, cell_type: str, **over) -> cells.Patch:
    rng = np.random.default_rng(seed)
    attrs = {**cells.sample_white_attributes(rng, cell_type), **over}
    p = cells.draw_white_cell(rng, cell_type, attrs, 0.5, 0.5)
    p.info["attrs"] = attrs
    return p


def _components(m: np.ndarray, min_px: int = 3) -> int:
    """4-connected components of at least ``min_px`` pixels (a lone corner pixel is no lobe)."""
    seen = np.zeros_like(m)
    n = 0
    for y, x in zip(*np.nonzero(m)):
        if seen[y, x]:
            continue
        size, todo = 0, deque([(y, x)])
        seen[y, x] = True
        while todo:
            cy, cx = todo.popleft()
            size += 1
            for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                if 0 <= ny < m.shape[0] and 0 <= nx < m.shape[1] and m[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    todo.append((ny, nx))
        n += size >= min_px
    return n


def _erode(m: np.ndarray) -> np.ndarray:
    out = m.copy()
    out[1:] &= m[:-1]
    out[:-1] &= m[1:]
    out[:, 1:] &= m[:, :-1]
    out[:, :-1] &= m[:, 1:]
    out[0] = out[-1] = out[:, 0] = out[:, -1] = False
    return out


@pytest.mark.parametrize("shape,lobes", [("segmented-bilobed", {2}),
                                         ("segmented-multilobed", {3, 4, 5}),
                                         ("unsegmented-round", {1}),
                                         ("unsegmented-indented", {1}),
                                         ("unsegmented-band", {1}),
                                         ("irregular", {1})])
def test_nucleus_lobes_follow_the_attribute(shape, lobes):
    for seed in range(32):
        size, body = ("small", "big")[seed % 2], ("round", "irregular")[seed // 2 % 2]
        p = _white(seed, "segmented neutrophil", nucleus_shape=shape, cell_size=size,
                   cell_shape=body, nuclear_cytoplasmic_ratio=("low", "high")[seed // 4 % 2])
        nucleus = p.mask & (p.sem == cells.NUCLEUS)
        assert p.info["lobes"] in lobes
        # one erosion cuts the 1-px chromatin strands: what is left are the lobes
        count = _components(_erode(nucleus)) if shape.startswith("segmented") else \
            _components(nucleus)
        assert count == p.info["lobes"], (seed, shape, p.info)


def _holes(p: cells.Patch) -> int:
    """Pale (vacuole-coloured) pixels of the cytoplasm."""
    cyto = p.mask & (p.sem == cells.CYTOPLASM)
    return int((cyto & (p.rgb.min(-1) > 235)).sum())


def test_vacuoles_are_clear_holes():
    for seed in range(30):
        yes = _white(seed, "monocyte", cytoplasm_vacuole="yes")
        no = _white(seed, "monocyte", cytoplasm_vacuole="no", cytoplasm_colour="blue")
        assert _holes(yes) > 0 and yes.info["vacuole_px"] > 0
        assert _holes(no) == 0


def test_granules_show_in_the_cytoplasm():
    plain = dict(cytoplasm_texture="clear", cytoplasm_vacuole="no", cytoplasm_colour="blue")
    sd = {True: [], False: []}
    for seed in range(30):
        for gran in (True, False):
            g = (dict(granularity="yes", granule_type="round", granule_colour="red") if gran
                 else dict(granularity="no", granule_type="nil", granule_colour="nil"))
            p = _white(seed, "eosinophil", **plain, **g)
            cyto = p.mask & (p.sem == cells.CYTOPLASM)
            sd[gran].append(float(p.rgb[cyto].std(0).mean()))
    assert min(sd[True]) > 3 * max(sd[False])


def test_chromatin_density_sets_nucleus_darkness():
    dark = [_white(s, "lymphocyte", chromatin_density="densely") for s in range(20)]
    pale = [_white(s, "lymphocyte", chromatin_density="loosely") for s in range(20)]

    def lum(p):
        return float(p.rgb[p.mask & (p.sem == cells.NUCLEUS)].mean())
    assert max(lum(p) for p in dark) < min(lum(p) for p in pale)


def test_bad_config_fails_loudly(tmp_path):
    with pytest.raises(ValueError, match="domain=1.5"):
        generate_dataset(tmp_path, SynthConfig(domain=1.5), progress=False)
    with pytest.raises(ValueError, match="size=8"):
        render_field(0, SynthConfig(size=8))


@pytest.mark.parametrize("size", [32, 64, 160])
def test_other_field_sizes(size):
    for i in range(4):
        f = render_field(i, SynthConfig(size=size))
        assert f.image.shape == (size, size, 3) and f.mask.shape == (size, size)
        assert (f.boxes[:, 2:] <= size).all() and (f.boxes[:, :2] >= 0).all()


def test_frosted_texture_is_speckled():
    plain = dict(cytoplasm_vacuole="no", granularity="no", granule_type="nil",
                 granule_colour="nil")
    sd = {}
    for tex in ("frosted", "clear"):
        sd[tex] = []
        for seed in range(20):
            p = _white(seed, "monocyte", cytoplasm_texture=tex, **plain)
            cyto = p.mask & (p.sem == cells.CYTOPLASM)
            sd[tex].append(float(p.rgb[cyto].std(0).mean()))
    assert min(sd["frosted"]) > 2 * max(sd["clear"])
