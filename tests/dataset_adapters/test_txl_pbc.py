"""txl_pbc on the release's layout: names spelled three ways, a classes.txt in every split's
labels folder; check, load and a COCO export that keeps every box."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from pycocotools.coco import COCO

from dataset_adapters.txl_pbc import TXLPBC
from unihema.cli import main
from unihema.data.catalog import DataError
from unihema.data.check import check_dataset

#: what the example holds: images per split and boxes per class over all splits
IMAGES = {"train": 2, "val": 1, "test": 1}
BOXES = {"red blood cell": 8, "white blood cell": 4, "platelet": 4}


@pytest.fixture
def release(tmp_path):
    assert TXLPBC.write_example(tmp_path) == IMAGES
    base = tmp_path / "TXL_PBC"
    # the two quirks of the real download, exactly as it has them
    assert (base / "labels" / "classes.txt").read_text().split() == ["WBC", "RBC", "Platelet"]
    assert "Platelets" in (base / "data.yaml").read_text()
    for split in IMAGES:
        assert (base / "labels" / split / "classes.txt").read_text().split() == \
            ["WBC", "RBC", "PC"]
    return tmp_path


def test_release_checks_with_one_note_and_exact_counts(release):
    report = check_dataset("txl_pbc", release, progress=False)
    assert report.problems == []
    (note,) = report.notes
    assert note.file.endswith("TXL_PBC/data.yaml")
    for spelled in ("TXL_PBC/data.yaml ['WBC', 'RBC', 'Platelets']",
                    "TXL_PBC/labels/classes.txt ['WBC', 'RBC', 'Platelet']",
                    "TXL_PBC/labels/train/classes.txt", "['WBC', 'RBC', 'PC']",
                    "read as ['white blood cell', 'red blood cell', 'platelet']"):
        assert spelled in note.reason
    assert {s.split: s.summary["samples"] for s in report.splits} == IMAGES
    boxes = Counter()
    for s in report.splits:
        boxes.update(s.summary["boxes_per_class"])
    assert dict(boxes) == BOXES
    samples = [s for split in IMAGES for s in TXLPBC(release).load(split)]
    assert all(not s.sample_id.startswith("classes") for s in samples)


def test_coco_export_round_trips_every_box(release, tmp_path, capsys):
    out = tmp_path / "coco"
    assert main(["data", "export", "txl_pbc", "--root", str(release), "--to", "coco",
                 "--out", str(out)]) == 0
    assert "[train] 2 samples" in capsys.readouterr().out
    boxes = Counter()
    for split, n in IMAGES.items():
        coco = COCO(str(out / f"{split}.json"))
        samples = TXLPBC(release).load(split)
        assert len(coco.getImgIds()) == len(samples) == n
        for image_id, s in enumerate(samples, start=1):
            anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
            names = [coco.loadCats(a["category_id"])[0]["name"] for a in anns]
            xyxy = [[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)]
            assert names == s.box_labels
            np.testing.assert_allclose(xyxy, s.boxes, atol=1e-4)
            boxes.update(names)
    assert dict(boxes) == BOXES


@pytest.mark.parametrize("where, text", [
    ("labels/train/classes.txt", "RBC\nWBC\nPC\n"),     # WBC and RBC swapped
    ("labels/classes.txt", "WBC\nRBC\nNeutrophil\n"),   # another class
    ("labels/val/classes.txt", "WBC\nRBC\n"),           # a class fewer
])
def test_names_that_map_to_other_classes_are_a_problem(release, where, text):
    (release / "TXL_PBC" / where).write_text(text)
    with pytest.raises(DataError, match=rf"data.yaml: lists .* but TXL_PBC/{where} lists"):
        TXLPBC(release).load("test")
    report = check_dataset("txl_pbc", release, progress=False)
    assert [s.summary["samples"] for s in report.splits] == [0, 0, 0]
    assert len(report.problems) == 3 and report.notes == []
    assert all("class order of the labels is ambiguous" in p.reason for p in report.problems)


def test_names_files_anywhere_are_never_labels(release):
    base = release / "TXL_PBC"
    (base / "images" / "train" / "obj.names").write_text("WBC\nRBC\nPlatelets\n")
    (base / "labels" / "test" / "Classes.TXT").write_text("WBC\nRBC\nPC\n")
    (base / "labels" / "custom.names").write_text("wbc\nrbc\nplatelet\n")
    report = check_dataset("txl_pbc", release, progress=False)
    assert report.problems == [] and len(report.notes) == 1
    assert "TXL_PBC/labels/custom.names" in report.notes[0].reason
    # a stray label file is still one
    (base / "labels" / "test" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match="orphan.txt: label file has no image"):
        TXLPBC(release).load("test")
