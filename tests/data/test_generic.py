"""The YAML-described generic adapter: each format, each way of splitting, errors named."""

from __future__ import annotations

import json

import numpy as np
import pytest

import dataset_adapters  # noqa: F401 - registers "generic"
from dataset_adapters import _examples as ex
from unihema.data.catalog import DataError, get_adapter
from unihema.data.check import check_dataset
from unihema.data.generic import GenericAdapter

W, H = 80, 64
BOXES = [(4.0, 4.0, 24.0, 24.0), (40.0, 30.0, 64.0, 54.0)]


def spec(root, text):
    p = root / "spec.yaml"
    p.write_text(text)
    return p


def load_all(root, spec_path, **kw):
    a = GenericAdapter(root, spec=spec_path, **kw)
    return a, {s: a.load(s) for s in a.splits}


def test_voc_with_split_files(tmp_path):
    ids = {"train": ["a", "b"], "test": ["c"]}
    for sid in sum(ids.values(), []):
        ex.write_smear(tmp_path / "img" / f"{sid}.jpg", W, H, BOXES, ["RBC", "WBC"])
        ex.write_voc(tmp_path / "xml" / f"{sid}.xml", f"{sid}.jpg", W, H,
                     [("RBC", (5, 5, 24, 24)), ("leukocyte", (41, 31, 64, 54))])
    for split, names in ids.items():
        (tmp_path / f"{split}.txt").write_text("\n".join(names))
    sp = spec(tmp_path, "format: voc\nimages: img/*.jpg\nannotations: xml/{stem}.xml\n"
                        "mapping: {RBC: red blood cell}\n"
                        "splits: {files: {train: train.txt, test: test.txt}}\n")
    a, parts = load_all(tmp_path, sp)
    assert a.tasks == ("detect",) and a.splits == ("train", "test")
    assert [s.sample_id for s in parts["train"]] == ["img/a", "img/b"]
    s = parts["test"][0]
    assert s.box_labels == ["red blood cell", "white blood cell"]  # mapping, then synonyms
    np.testing.assert_array_equal(s.boxes, np.asarray(BOXES, np.float32) + [0, 0, 0, 0])
    report = check_dataset("generic", tmp_path, options={"spec": str(sp)}, progress=False)
    assert report.ok and report.splits[0].summary["samples"] == 2


def test_yolo_with_split_placeholder_and_problems(tmp_path):
    for split in ("train", "val"):
        ex.write_smear(tmp_path / "images" / split / f"{split}1.png", W, H, BOXES)
        ex.write_yolo(tmp_path / "labels" / split / f"{split}1.txt",
                      [ex.yolo_row(k, b, W, H) for k, b in zip((0, 1), BOXES)])
    ex.write_smear(tmp_path / "images" / "val" / "nolabel.png", W, H)
    sp = spec(tmp_path, "format: yolo\nimages: images/{split}/*.png\n"
                        "annotations: labels/{split}/{stem}.txt\nclasses: [WBC, Platelets]\n"
                        "splits: {names: [train, val]}\n")
    a = GenericAdapter(tmp_path, spec=sp, on_error="skip")
    (t,) = a.load("train")
    assert t.box_labels == ["white blood cell", "platelet"]
    np.testing.assert_allclose(t.boxes, BOXES, atol=1e-3)
    assert len(a.load("val")) == 1
    assert len(a.problems) == 1 and "labels/val/nolabel.txt" in a.problems[0].file
    (tmp_path / "labels" / "train" / "train1.txt").write_text("5 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match=r"train1.txt:1: class 5 is not in the names"):
        GenericAdapter(tmp_path, spec=sp).load("train")


def test_points_mask_coco(tmp_path):
    ex.write_smear(tmp_path / "p" / "f1.jpg", W, H)
    ex.write_points(tmp_path / "p" / "f1.txt", [(10, 10, "RBC"), (70, 60, "WBC")])
    sp = spec(tmp_path, "format: points\nimages: p/*.jpg\nannotations: p/{stem}.txt\n"
                        "point_box_size: 10\nsplits: {seeded: {fractions: {train: 1.0}}}\n")
    (s,) = GenericAdapter(tmp_path, spec=sp).load("train")
    assert s.boxes.tolist() == [[5, 5, 15, 15], [65, 55, 75, 64]]
    assert s.meta["points"] == [[10, 10], [70, 60]]

    ex.write_smear(tmp_path / "m" / "c1.bmp", W, H)
    ex.write_mask(tmp_path / "m" / "c1_mask.png", ex.ellipse_mask(H, W, BOXES, [1, 1], 2))
    sp = spec(tmp_path, "format: mask\nimages: m/*.bmp\nannotations: m/{stem}_mask.png\n"
                        "mask_values: {0: background, 1: cytoplasm, 2: nucleus}\n"
                        "splits: {seeded: {fractions: {train: 1.0}}}\n")
    (s,) = GenericAdapter(tmp_path, spec=sp).load("train")
    assert s.mask_values == {0: "background", 1: "cytoplasm", 2: "nucleus"}
    assert s.tasks() == ["segment"]

    ex.write_smear(tmp_path / "c" / "x.png", W, H)
    ex.write_coco(tmp_path / "c" / "train.json",
                  [{"id": 1, "file_name": "x.png", "width": W, "height": H}],
                  [{"id": 1, "image_id": 1, "category_id": 2, "bbox": [4, 4, 20, 20]}],
                  [{"id": 2, "name": "ring"}])
    sp = spec(tmp_path, "format: coco\nannotations: c/{split}.json\nimage_root: c\n"
                        "splits: {names: [train]}\n")
    (s,) = GenericAdapter(tmp_path, spec=sp).load("train")
    assert s.box_labels == ["ring form"] and s.boxes.tolist() == [[4, 4, 24, 24]]
    doc = json.loads((tmp_path / "c" / "train.json").read_text())
    doc["categories"][0]["name"] = "blob"
    (tmp_path / "c" / "train.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match="unknown label 'blob'.*add it to the spec's mapping"):
        GenericAdapter(tmp_path, spec=sp).load("train")


def test_folder_and_csv_with_patients(tmp_path):
    for i in range(6):
        ex.write_crop(tmp_path / "cells" / ("lym" if i % 2 else "neu") / f"P{i // 2}_{i}.png")
    sp = spec(tmp_path, "format: folder\nclass_root: cells\nclasses: [neu, lym]\n"
                        "mapping: {neu: neutrophil, lym: lymphocyte}\npatient: '/(P\\d+)_'\n"
                        "splits: {seeded: {fractions: {train: 0.5, test: 0.5}, seed: 3}}\n")
    a, parts = load_all(tmp_path, sp)
    assert sum(len(v) for v in parts.values()) == 6
    pats = {k: {s.patient_id for s in v} for k, v in parts.items()}
    assert not pats["train"] & pats["test"] and None not in pats["train"]
    assert {s.label for v in parts.values() for s in v} == {"neutrophil", "lymphocyte"}
    assert parts["train"][0].label_set == ["neutrophil", "lymphocyte"]

    ex.write_csv(tmp_path / "t.csv", ["file", "cell type", "subset", "donor"],
                 [["cells/neu/P0_0.png", "neutrophil", "train", "d1"],
                  ["cells/lym/P0_1.png", "Lymphocytes", "test", "d2"],
                  ["cells/none.png", "monocyte", "test", "d3"]])
    sp = spec(tmp_path, "format: csv\ntable: t.csv\n"
                        "columns: {image: file, label: cell type, split: subset, patient: donor}"
                        "\nsplits: {names: [train, test]}\n")
    a = GenericAdapter(tmp_path, spec=sp, on_error="skip")
    assert [(s.label, s.patient_id) for s in a.load("test")] == [("lymphocyte", "d2")]
    assert [str(p) for p in a.problems] == [
        f"{tmp_path / 't.csv'}:4: image 'cells/none.png' not found under {tmp_path}"]


@pytest.mark.parametrize("text, expected", [
    ("format: tiff\n", "format: expected one of"),
    ("format: voc\nimages: x\n", r"needs key\(s\) \['annotations'\]"),
    ("format: yolo\nimages: a\nannotations: b\n", "needs 'classes'"),
    ("format: voc\nimages: a\nannotations: b\ncolour: red\n", r"unknown key\(s\) \['colour'\]"),
    ("format: voc\nimages: a\nannotations: b\nmapping: {x: blobocyte}\n", "not a canonical"),
    ("- a\n", "expected a mapping"),
])
def test_bad_specs(tmp_path, text, expected):
    with pytest.raises(DataError, match=expected):
        GenericAdapter(tmp_path, spec=spec(tmp_path, text))


def test_default_spec_and_get_adapter(tmp_path):
    with pytest.raises(DataError, match="unihema_dataset.yaml not found"):
        get_adapter("generic", tmp_path)
    GenericAdapter.write_example(tmp_path)
    a = get_adapter("generic", tmp_path)
    assert [len(a.load(s)) for s in a.splits] == [2, 1, 1]


def test_yolo_names_files_beside_the_labels(tmp_path):
    """TXL-PBC's quirks in a user's YOLO set: a classes.txt in every labels/<split>/ and names
    spelled three ways. Spellings of the same classes are one note, names of other classes a
    problem; a names file is never a label file, a stray label file is a problem."""
    for split in ("train", "val"):
        ex.write_smear(tmp_path / "images" / split / f"{split}1.png", W, H, BOXES)
        ex.write_yolo(tmp_path / "labels" / split / f"{split}1.txt",
                      [ex.yolo_row(k, b, W, H) for k, b in zip((0, 2), BOXES)])
        (tmp_path / "labels" / split / "classes.txt").write_text("WBC\nRBC\nPC\n")
    (tmp_path / "labels" / "classes.txt").write_text("WBC\nRBC\nPlatelet\n")
    (tmp_path / "data.yaml").write_text("nc: 3\nnames: ['WBC', 'RBC', 'Platelets']\n")
    text = ("format: yolo\nimages: images/{split}/*.png\nannotations: labels/{split}/{stem}.txt\n"
            "names_file: data.yaml\nsplits: {names: [train, val]}\n")
    sp = spec(tmp_path, text)
    with pytest.raises(DataError, match=r"data.yaml: lists .* but labels/train/classes.txt lists "
                                        r".*class 2 is 'Platelets' \(platelet\) in one and 'PC' "
                                        r"\(unknown\).*a spec's mapping"):
        GenericAdapter(tmp_path, spec=sp).load("train")
    sp = spec(tmp_path, text + "mapping: {PC: platelet}\n")
    report = check_dataset("generic", tmp_path, options={"spec": str(sp)}, progress=False)
    assert report.problems == []
    assert [s.summary["samples"] for s in report.splits] == [1, 1]
    (note,) = report.notes
    assert "labels/classes.txt ['WBC', 'RBC', 'Platelet']" in note.reason
    assert "labels/train/classes.txt, labels/val/classes.txt ['WBC', 'RBC', 'PC']" in note.reason
    (s,) = GenericAdapter(tmp_path, spec=sp).load("val")
    assert s.box_labels == ["white blood cell", "platelet"]

    (tmp_path / "labels" / "val" / "stray.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    a = GenericAdapter(tmp_path, spec=sp, on_error="skip")
    assert len(a.load("val")) == 1
    assert [str(p) for p in a.problems] == [
        f"{tmp_path / 'labels/val/stray.txt'}: label file has no image (images: "
        f"images/{{split}}/*.png)"]
    (tmp_path / "labels" / "val" / "stray.txt").unlink()

    (tmp_path / "labels" / "val" / "classes.txt").write_text("RBC\nWBC\nPC\n")  # swapped
    with pytest.raises(DataError, match=r"labels/val/classes.txt lists .*class 0 is 'WBC' "
                                        r"\(white blood cell\) in one and 'RBC'"):
        GenericAdapter(tmp_path, spec=sp).load("train")
    # names declared in the spec are the reference the files are checked against
    (tmp_path / "labels" / "val" / "classes.txt").write_text("WBC\nRBC\nPC\n")
    declared = text.replace("names_file: data.yaml", "classes: [WBC, RBC, PLT]")
    sp = spec(tmp_path, declared + "mapping: {PC: platelet}\n")
    assert GenericAdapter(tmp_path, spec=sp).load("train")[0].box_labels[1] == "platelet"
    sp = spec(tmp_path, declared.replace("[WBC, RBC", "[RBC, WBC"))
    with pytest.raises(DataError, match=r"spec.yaml: lists \['RBC', 'WBC', 'PLT'\] but "
                                        r"data.yaml lists"):
        GenericAdapter(tmp_path, spec=sp).load("train")


def test_patient_bags_from_a_path_pattern_and_from_csv_columns(tmp_path):
    from unihema.data.patients import adapter_bags, dataset_bags

    for i in range(6):  # <diagnosis>/<patient>/<cell type>_<i>.png
        diag, pid = ("APL", "p1") if i < 2 else ("AML", f"p{2 + i % 2}")
        ex.write_crop(tmp_path / "cohort" / diag / pid / f"{'neu' if i % 2 else 'lym'}_{i}.png")
    sp = spec(tmp_path, "format: csv\ntable: cells.csv\n"
                        "columns: {image: file, label: type, patient: donor, diagnosis: dx, "
                        "findings: genetics}\n")
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    ex.write_csv(tmp_path / "cells.csv", ["file", "type", "donor", "dx", "genetics"],
                 [[f, "neutrophil" if "/neu_" in f else "lymphocyte", f.split("/")[2],
                   "apl" if "/APL/" in f else "aml", "PML::RARA" if "/APL/" in f else ""]
                  for f in files])
    bags = {b.patient_id: b for b in dataset_bags("generic", tmp_path, spec=sp)}
    assert sorted(bags) == ["p1", "p2", "p3"]
    assert bags["p1"].labels == ["acute promyelocytic leukemia"]
    assert bags["p1"].findings == ["PML::RARA"] and bags["p2"].findings == []
    assert sorted(bags["p1"].cell_types) == ["lymphocyte", "neutrophil"]
    assert sum(len(b.cells) for b in bags.values()) == 6

    other = tmp_path / "b"  # folder format: cells/<class>/<diagnosis>/<patient>/<i>.png
    for i, f in enumerate(files):
        ex.write_crop(other / "cells" / ("neu" if "/neu_" in f else "lym") /
                      "/".join(f.split("/")[1:3]) / f"{i}.png")
    sp = spec(other, "format: folder\nclass_root: cells\nmapping: {neu: neutrophil, "
                     "lym: lymphocyte}\npatient: '/(?P<diagnosis>APL|AML)/(?P<patient>p\\d+)/'\n")
    bags = {b.patient_id: b for b in adapter_bags(GenericAdapter(other, spec=sp))}
    assert sorted(bags) == ["p1", "p2", "p3"]
    assert bags["p2"].labels == ["acute myeloid leukemia"] and len(bags["p1"].cells) == 2
