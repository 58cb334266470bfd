"""The generic adapter's detection CSV (``format: csv_boxes``): the worked example of
docs/adding_a_dataset.md loads, checks and exports to COCO; bad rows are reported with file and
line."""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

import dataset_adapters  # noqa: F401 - registers "generic"
from dataset_adapters import _examples as ex
from unihema.cli import main
from unihema.data.catalog import DataError
from unihema.data.check import check_dataset
from unihema.data.generic import GenericAdapter

DOC = Path(__file__).resolve().parents[2] / "docs" / "adding_a_dataset.md"
W, H = 96, 72


def doc_example():
    """The CSV and the spec of the docs' "Detection CSV" section, as printed there."""
    section = DOC.read_text().split("### Detection CSV", 1)[1]
    table = re.search(r"```csv\n(.*?)```", section, re.S).group(1)
    spec = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    return table, spec


def write_images(root, table, extra=("blank_01.jpg",)):
    rows = list(csv.DictReader(io.StringIO(table)))
    names = list(dict.fromkeys(r["filename"] for r in rows)) + list(extra)
    for i, name in enumerate(names):
        mine = [r for r in rows if r["filename"] == name]
        boxes = [tuple(float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax")) for r in mine]
        ex.write_smear(root / "images" / name, W, H, boxes, [r["class"] for r in mine], seed=i)
    return rows


@pytest.fixture
def example(tmp_path):
    table, spec = doc_example()
    root = tmp_path / "my_boxes"
    rows = write_images(root, table)
    (root / "boxes.csv").write_text(table)
    (root / "unihema_dataset.yaml").write_text(spec)
    return root, rows


def test_docs_example_loads_checks_and_exports(example, tmp_path, capsys):
    root, rows = example
    a = GenericAdapter(root)
    assert a.tasks == ("detect",) and a.splits == ("train", "test")
    samples = {s.sample_id: s for split in a.splits for s in a.load(split)}
    assert sorted(samples) == ["blank_01", "smear_01", "smear_02", "smear_03", "smear_04"]
    assert samples["blank_01"].boxes.shape == (0, 4)  # matched by images:, no row: no cells
    s = samples["smear_01"]
    assert s.box_labels == ["red blood cell", "red blood cell", "white blood cell"]
    assert s.boxes.tolist() == [[4, 6, 24, 26], [30, 8, 52, 30], [50, 36, 80, 66]]
    assert samples["smear_02"].box_labels == ["red blood cell", "platelet"]

    report = check_dataset("generic", root, progress=False)
    assert report.problems == [] and report.notes == []
    assert sum(sp.summary["samples"] for sp in report.splits) == 5
    assert all(sp.summary["samples"] for sp in report.splits)  # seeded: both splits used

    assert main(["data", "check", "generic", "--root", str(root), "--no-progress"]) == 0
    out = tmp_path / "coco"
    assert main(["data", "export", "generic", "--root", str(root), "--to", "coco",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    labels = Counter()
    for split in a.splits:
        coco = COCO(str(out / f"{split}.json"))
        loaded = a.load(split)
        assert len(coco.getImgIds()) == len(loaded)
        for image_id, sample in enumerate(loaded, start=1):
            anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
            xyxy = [[x, y, x + w, y + h] for x, y, w, h in (an["bbox"] for an in anns)]
            np.testing.assert_allclose(np.reshape(xyxy, (-1, 4)), sample.boxes, atol=1e-4)
            labels.update(coco.loadCats(an["category_id"])[0]["name"] for an in anns)
    assert labels == Counter({"red blood cell": 5, "white blood cell": 2, "platelet": 1})
    assert sum(labels.values()) == len(rows)


def test_export_takes_a_spec_kept_outside_the_dataset(example, tmp_path, capsys):
    root, rows = example
    spec = tmp_path / "elsewhere.yaml"
    (root / "unihema_dataset.yaml").rename(spec)
    out = tmp_path / "coco"
    assert main(["data", "export", "generic", "--root", str(root), "--spec", str(spec),
                 "--to", "coco", "--out", str(out)]) == 0
    assert "samples" in capsys.readouterr().out
    n = sum(len(json.loads((out / f"{split}.json").read_text())["annotations"])
            for split in ("train", "test"))
    assert n == len(rows)


def test_bad_rows_are_reported_with_file_and_line(example):
    root, _ = example
    table = root / "boxes.csv"
    table.write_text(table.read_text() + (
        "smear_02.jpg,96,72,WBC,10,10,32,32\n"        # line 10: box of line 5, another label
        "smear_03.jpg,96,72,RBC,0,0,22,20\n"          # line 11: repeats line 7 exactly
        "smear_04.jpg,96,72,RBC,70,50,97,72\n"        # line 12: 1 px past the border
        "smear_01.jpg,96,72,RBC,4,6,x,26\n"           # line 13: not a number
        "gone.jpg,96,72,RBC,4,6,24,26\n"              # line 14: no such image
        "blank_01.jpg,64,48,RBC,1,1,9,9\n"            # line 15: the image is 96x72
        "smear_05.jpg,96,72,RBC,4,6,,26\n"))          # line 16: one coordinate missing
    ex.write_smear(root / "images" / "smear_05.jpg", W, H)
    a = GenericAdapter(root, on_error="skip")
    loaded = {s.sample_id: s for split in a.splits for s in a.load(split)}
    assert sorted(loaded) == ["smear_03", "smear_04"]
    assert loaded["smear_03"].num_boxes == 2 and loaded["smear_04"].boxes[-1].tolist() == \
        [70, 50, 96, 72]
    where = str(table)
    assert sorted(str(p) for p in a.problems) == sorted([
        f"{where}:10: lines 5 and 10 give the same box [10.0, 10.0, 32.0, 32.0] of image "
        f"'smear_02.jpg' two labels 'RBC' and 'WBC'",
        f"{where}:13: xmax: expected a number, got 'x' (image 'smear_01.jpg' left out)",
        f"{where}:14: image 'gone.jpg' (line 14) not found under {root / 'images'}",
        f"{where}:15: width x height say 64x48 but image 'blank_01.jpg' is 96x72",
        f"{where}:16: empty field(s) ['xmax']: a row gives a whole box with its label, or "
        f"leaves all of ['xmin', 'ymin', 'xmax', 'ymax'] and class empty for an image without "
        f"cells (image 'smear_05.jpg' left out)",
    ])
    assert sorted(str(n) for n in a.notes) == sorted([
        f"{where}:11: repeats line 7 (same box, same label); read once",
        f"{where}:12: 'RBC': box [70.0, 50.0, 97.0, 72.0] reaches past the 96x72 image "
        f"by <= 1 px; moved onto the border"])
    report = check_dataset("generic", root, progress=False)
    assert len(report.problems) == 6 and not report.ok  # the 5 above, and an empty split
    assert sum("is empty: no sample loaded" in str(p) for p in report.problems) == 1
    with pytest.raises(DataError, match=r"boxes.csv:14: image 'gone.jpg' \(line 14\) not found"):
        GenericAdapter(root).load("train")


def test_box_outside_and_coordinates_that_contradict_the_declaration(example):
    root, _ = example
    table = root / "boxes.csv"
    text = table.read_text()
    table.write_text(text.replace("smear_04.jpg,96,72,RBC,70,50,96,72",
                                  "smear_04.jpg,96,72,RBC,70,50,99,72"))
    a = GenericAdapter(root, on_error="skip")
    assert "smear_04" not in {s.sample_id for sp in a.splits for s in a.load(sp)}
    (p,) = a.problems
    assert (p.line, p.reason) == (9, "'RBC': box [70.0, 50.0, 99.0, 72.0] lies outside "
                                     "the 96x72 image (by more than 1 px)")

    spec = root / "unihema_dataset.yaml"
    spec.write_text(spec.read_text().replace("coordinates: pixels", "coordinates: normalized"))
    table.write_text(text)
    with pytest.raises(DataError, match=r"boxes.csv: coordinates are declared normalized \(0-1\) "
                                        r"but every box has values > 1 \(line 2: .*declare "
                                        r"'coordinates: pixels'"):
        GenericAdapter(root).load("train")

    lines = text.splitlines()
    normalised = [lines[0]]
    for row in csv.DictReader(io.StringIO(text)):
        x = [float(row[k]) / (W if k[0] == "x" else H) for k in ("xmin", "ymin", "xmax", "ymax")]
        normalised.append(",".join([row["filename"], "96", "72", row["class"]] +
                                   [f"{v:.6f}" for v in x]))
    table.write_text("\n".join(normalised) + "\n")
    samples = {s.sample_id: s for sp in ("train", "test") for s in GenericAdapter(root).load(sp)}
    np.testing.assert_allclose(samples["smear_01"].boxes, [[4, 6, 24, 26], [30, 8, 52, 30],
                                                           [50, 36, 80, 66]], atol=1e-3)
    spec.write_text(spec.read_text().replace("coordinates: normalized", "coordinates: pixels"))
    with pytest.raises(DataError, match=r"declared pixels but every value of the file is <= 1 "
                                        r"\(line 2: .*declare 'coordinates: normalized'"):
        GenericAdapter(root).load("train")


def test_split_column_per_split_tables_and_unlisted_images(tmp_path):
    table, _ = doc_example()
    write_images(tmp_path, table, extra=())
    ex.write_smear(tmp_path / "images" / "unlisted.jpg", W, H)
    rows = table.splitlines()
    with_split = [rows[0] + ",subset"] + [r + ("," + ("test" if "smear_04" in r else "train"))
                                          for r in rows[1:]]
    (tmp_path / "b.csv").write_text("\n".join(with_split) + "\nsmear_03.jpg,,,,,,,,train\n")
    (tmp_path / "s.yaml").write_text(
        "format: csv_boxes\ntable: b.csv\nimage_root: images\ncoordinates: pixels\n"
        "columns: {image: filename, label: class, split: subset}\n"
        "splits: {names: [train, test]}\n")
    a = GenericAdapter(tmp_path, spec=tmp_path / "s.yaml", on_error="skip")
    assert [s.sample_id for s in a.load("test")] == ["smear_04"]
    assert [s.sample_id for s in a.load("train")] == ["smear_01", "smear_02"]
    (p,) = a.problems  # smear_03 has boxes and a row saying it has none
    assert p.line == 10 and "line 10 lists image 'smear_03.jpg' without cells but line 7" \
        in p.reason
    (n,) = a.notes
    assert "1 image file(s) beside the listed images have no row and are not read " \
           "(unlisted.jpg); declare 'images:'" in n.reason

    (tmp_path / "s.yaml").write_text(
        "format: csv_boxes\ntable: b.csv\nimages: images/*.jpg\ncoordinates: pixels\n"
        "columns: {image: filename, label: class, split: subset}\n")
    with pytest.raises(DataError, match=r"images: 'images/\*.jpg' needs \{split\}"):
        GenericAdapter(tmp_path, spec=tmp_path / "s.yaml")


@pytest.mark.parametrize("text, expected", [
    ("format: csv_boxes\ntable: b.csv\n", r"needs key\(s\) \['coordinates'\]"),
    ("format: csv_boxes\ntable: b.csv\ncoordinates: px\n", "coordinates: expected one of "
                                                          "pixels, normalized, got 'px'"),
    ("format: csv_boxes\ntable: b.csv\ncoordinates: pixels\ncolumns: {x0: left}\n",
     r"columns: unknown column role\(s\) \['x0'\]; valid: \['image', 'xmin'"),
    ("format: csv_boxes\ntable: b.csv\ncoordinates: pixels\nsplits: {names: [a, b]}\n",
     r"splits: names needs \{split\} in the table's path or a 'split' column"),
])
def test_bad_specs(tmp_path, text, expected):
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(DataError, match=expected):
        GenericAdapter(tmp_path, spec=tmp_path / "s.yaml")


def test_missing_column_names_the_columns_found(example):
    root, _ = example
    (root / "boxes.csv").write_text("filename,class,x1,y1,x2,y2\nsmear_01.jpg,RBC,1,1,5,5\n")
    with pytest.raises(DataError, match=r"boxes.csv:1: missing column\(s\) \['xmin', 'ymin', "
                                        r"'xmax', 'ymax', 'width', 'height'\]; columns found: "
                                        r"\['filename', 'class', 'x1'"):
        GenericAdapter(root).load("train")
