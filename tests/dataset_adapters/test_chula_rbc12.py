"""Chula RBC-12: point labels become boxes and cell crops; bad lines and unknown types are
named; exact figures on the real release."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import dataset_adapters  # noqa: F401 - registers the adapters
from dataset_adapters._detseg import assign_splits
from dataset_adapters.chula_rbc12 import LABEL_MAP, ChulaRBC12
from unihema.data import io
from unihema.data.catalog import DataError


@pytest.fixture
def root(tmp_path):
    ChulaRBC12.write_example(tmp_path)
    return tmp_path


def _all(adapter):
    return [s for split in ChulaRBC12.splits for s in adapter.load(split)]


def test_points_become_boxes_and_are_kept(root):
    samples = {s.sample_id: s for s in _all(ChulaRBC12(root))}
    s = samples["1"]
    lines = (root / "Label" / "1.txt").read_text().split("\n")[:-1]
    assert len(s.boxes) == len(lines) == len(s.meta["points"])
    x, y, t = lines[0].split()
    assert s.meta["points"][0] == [float(x), float(y)]
    half = ChulaRBC12.point_box_size / 2
    assert s.boxes[0].tolist() == [max(0, float(x) - half), max(0, float(y) - half),
                                   min(160, float(x) + half), min(120, float(y) + half)]
    assert s.box_labels[0] == LABEL_MAP[t]


def test_unlabelled_image_is_a_note_not_a_sample(root):
    adapter = ChulaRBC12(root)
    samples = _all(adapter)
    assert "10" not in {s.sample_id for s in samples}
    assert any(n.file.endswith("/10.jpg") and "not annotated" in n.reason for n in adapter.notes)


def test_malformed_line_raises_naming_file_and_line(root):
    label = root / "Label" / "2.txt"
    label.write_text(label.read_text() + "12.5 oops 3\n")
    n = len(label.read_text().splitlines())
    with pytest.raises(DataError, match=rf"2\.txt:{n}: .*y"):
        _all(ChulaRBC12(root))
    adapter = ChulaRBC12(root, on_error="skip")
    ids = {s.sample_id for s in _all(adapter)}
    assert "2" not in ids and "1" in ids
    assert [(p.file.endswith("2.txt"), p.line) for p in adapter.problems] == [(True, n)]


def test_unknown_type_and_point_outside_are_problems(root):
    (root / "Label" / "3.txt").write_text("10 10 13\n")
    (root / "Label" / "4.txt").write_text("10 500 0\n")
    adapter = ChulaRBC12(root, on_error="skip")
    _all(adapter)
    reasons = {p.file.rsplit("/", 1)[-1]: p for p in adapter.problems}
    assert "unknown label '13'" in reasons["3.txt"].reason and reasons["3.txt"].line == 1
    assert "outside the 160x120 image" in reasons["4.txt"].reason


def test_every_cell_is_a_classify_crop_of_its_field(root):
    samples = _all(ChulaRBC12(root))
    fields = {s.sample_id: s for s in samples if s.meta["kind"] == "field"}
    crops = [s for s in samples if s.meta["kind"] == "crop"]
    assert len(crops) == sum(f.num_boxes for f in fields.values())
    for c in crops:
        field = fields[c.meta["field"]]
        k = c.meta["box_index"]
        assert c.tasks() == ["classify"] and c.split == field.split
        assert c.sample_id == f"{field.sample_id}_c{k}" and c.label == field.box_labels[k]
        assert c.label_set == list(ChulaRBC12.classes["classify"])
        file, (x0, y0, x1, y1) = io.split_crop_path(c.image_path)
        assert file == field.image_path and (x1 - x0, y1 - y0) == (c.width, c.height)
        x, y = field.meta["points"][k]
        assert c.meta["point"] == [x - x0, y - y0]
        # the crop_size window centred on the point, cut where it leaves the image
        half = ChulaRBC12.crop_size // 2
        assert (x0, y0, x1, y1) == (max(0, x - half), max(0, y - half),
                                    min(field.width, x + half), min(field.height, y + half))
        np.testing.assert_array_equal(io.read_image(c.image_path),
                                      io.read_image(field.image_path)[y0:y1, x0:x1])
    assert any(c.width < ChulaRBC12.crop_size for c in crops)  # the 160x120 example cuts some


def test_empty_label_file_is_not_annotated(root):
    adapter = ChulaRBC12(root)
    assert "11" not in {s.sample_id for s in _all(adapter)}
    assert any(n.file.endswith("11.txt") and "empty label file" in n.reason
               for n in adapter.notes)


#: cells per type in the real release (Label/*.txt), overall and per split (70/10/20, seed 0)
REAL_CELLS = {
    "train": {"red blood cell": 4290, "macrocyte": 501, "microcyte": 320, "spherocyte": 2456,
              "target cell": 2137, "stomatocyte": 1281, "ovalocyte": 1442, "teardrop cell": 236,
              "burr cell": 539, "schistocyte": 653, "unclassified red blood cell": 142,
              "hypochromic cell": 745, "elliptocyte": 902},
    "val": {"red blood cell": 539, "macrocyte": 65, "microcyte": 29, "spherocyte": 253,
            "target cell": 142, "stomatocyte": 448, "ovalocyte": 249, "teardrop cell": 15,
            "burr cell": 41, "schistocyte": 85, "unclassified red blood cell": 25,
            "hypochromic cell": 140, "elliptocyte": 35},
    "test": {"red blood cell": 1501, "macrocyte": 123, "microcyte": 112, "spherocyte": 740,
             "target cell": 474, "stomatocyte": 267, "ovalocyte": 449, "teardrop cell": 56,
             "burr cell": 205, "schistocyte": 159, "unclassified red blood cell": 17,
             "hypochromic cell": 178, "elliptocyte": 115},
}
REAL_TOTAL = {"red blood cell": 6330, "macrocyte": 689, "microcyte": 461, "spherocyte": 3449,
              "target cell": 2753, "stomatocyte": 1996, "ovalocyte": 2140, "teardrop cell": 307,
              "burr cell": 785, "schistocyte": 897, "unclassified red blood cell": 184,
              "hypochromic cell": 1063, "elliptocyte": 1052}


def _raw_count(root):
    """Cells per split and type, read from the label files without the adapter's readers."""
    images = sorted(p.stem for p in (root / "Dataset").glob("*.jpg"))
    splits = assign_splits(images)
    cells = {s: Counter() for s in ChulaRBC12.splits}
    fields = Counter()
    for stem in images:
        label = root / "Label" / f"{stem}.txt"
        lines = label.read_text().split() if label.is_file() else []
        types = lines[2::3]
        if types:
            fields[splits[stem]] += 1
            cells[splits[stem]].update(LABEL_MAP[t] for t in types)
    return fields, cells


def test_real_data(shared_datasets):
    root = shared_datasets / "Chula-RBC-12"
    assert len(list((root / "Dataset").glob("*.jpg"))) == 738
    assert len(list((root / "Label").glob("*.txt"))) == 623
    adapter = ChulaRBC12(root)
    loaded = {split: adapter.load(split) for split in adapter.splits}
    assert adapter.problems == []
    # 115 images without a label file and 2 with an empty one (53, 56: fields full of cells)
    assert len(adapter.notes) == 117
    assert sorted(n.file.rsplit("/", 1)[-1] for n in adapter.notes
                  if "empty label file" in n.reason) == ["53.txt", "56.txt"]
    fields = {s: [x for x in v if x.meta["kind"] == "field"] for s, v in loaded.items()}
    crops = {s: [x for x in v if x.meta["kind"] == "crop"] for s, v in loaded.items()}
    assert {s: len(v) for s, v in fields.items()} == {"train": 440, "val": 60, "test": 121}
    assert {s: len(v) for s, v in crops.items()} == {"train": 15644, "val": 2066, "test": 4396}
    for split in adapter.splits:
        boxes = Counter(lab for f in fields[split] for lab in f.box_labels)
        assert boxes == REAL_CELLS[split]
        assert Counter(c.label for c in crops[split]) == REAL_CELLS[split]
    total = sum((Counter(v) for v in REAL_CELLS.values()), Counter())
    assert total == REAL_TOTAL and sum(total.values()) == 22106
    raw_fields, raw_cells = _raw_count(root)
    assert raw_fields == {s: len(v) for s, v in fields.items()}
    assert raw_cells == {s: Counter(v) for s, v in REAL_CELLS.items()}
    # every point inside its 640x480 field, none given twice
    for f in (f for v in fields.values() for f in v):
        assert (f.width, f.height) == (640, 480)
        points = [tuple(p) for p in f.meta["points"]]
        assert len(set(points)) == len(points)
        assert all(0 <= x < 640 and 0 <= y < 480 for x, y in points)
    some = crops["test"][::500]
    assert all(io.image_size(c.image_path) == (c.width, c.height) for c in some)
    assert all(io.read_image(c.image_path).shape == (c.height, c.width, 3) for c in some)
