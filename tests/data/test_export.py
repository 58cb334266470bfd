"""Export to COCO (round-tripped through pycocotools), Hugging Face datasets and detectron2."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from unihema.cli import main
from unihema.data.catalog import ADAPTERS, DataError, load_dataset
from unihema.data.export import (default_classes, detectron2_records, register_detectron2,
                                 to_coco, to_hf)
from unihema.data.io import read_mask


@pytest.fixture(scope="module")
def synth(synth_root):
    return load_dataset("synthetic_smear", synth_root, "val")


def _regions(sample):
    classes = sorted(set(sample.mask_values.values()))
    mask = read_mask(sample.mask_path, sample.mask_values, classes)
    return {n: mask == i for i, n in enumerate(classes) if n != "background" and (mask == i).any()}


def test_coco_round_trip_through_pycocotools(synth, tmp_path):
    assert any(s.mask_path for s in synth) and any(s.label for s in synth)
    out = tmp_path / "val.json"
    counts = to_coco(synth, out)
    coco = COCO(str(out))
    n_boxes = sum(s.num_boxes for s in synth)
    n_regions = sum(len(_regions(s)) for s in synth if s.mask_path)
    assert len(coco.getImgIds()) == len(synth) == counts["images"]
    assert len(coco.getAnnIds()) == n_boxes + n_regions == counts["annotations"]
    names = default_classes(synth)
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == names
    assert "background" not in names and counts["categories"] == len(names)

    checked_mask = False
    for image_id, s in enumerate(synth, start=1):
        info = coco.loadImgs(image_id)[0]
        assert (info["width"], info["height"], info["sample_id"]) == (s.width, s.height,
                                                                      s.sample_id)
        assert info.get("label") == s.label
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        boxes = [a for a in anns if not a["iscrowd"]]
        xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in boxes)])
        np.testing.assert_allclose(xyxy.reshape(-1, 4), s.boxes if s.boxes is not None
                                   else np.zeros((0, 4)), atol=1e-4)
        labels = [coco.loadCats(a["category_id"])[0]["name"] for a in boxes]
        assert labels == list(s.box_labels or [])
        regions = [a for a in anns if a["iscrowd"]]
        if s.mask_path:
            truth = _regions(s)
            assert sorted(coco.loadCats(a["category_id"])[0]["name"] for a in regions) == \
                sorted(truth)
            for a in regions:
                name = coco.loadCats(a["category_id"])[0]["name"]
                decoded = coco.annToMask(a).astype(bool)
                assert np.array_equal(decoded, truth[name])
                assert a["area"] == truth[name].sum()
                checked_mask = True
        else:
            assert regions == []
    assert checked_mask


def test_coco_copies_images_and_rejects_unknown_labels(synth, tmp_path):
    fields = [s for s in synth if s.num_boxes][:2]
    to_coco(fields, tmp_path / "c.json", copy_images_to=tmp_path / "img")
    coco = json.loads((tmp_path / "c.json").read_text())
    for s, image in zip(fields, coco["images"]):
        copied = tmp_path / "img" / image["file_name"]
        assert copied.read_bytes() == open(s.image_path, "rb").read()
    with pytest.raises(DataError, match="not among the export classes"):
        to_coco(fields, tmp_path / "d.json", classes=["platelet"])


def test_hf_round_trip(synth, tmp_path):
    from datasets import load_from_disk

    to_hf(synth, tmp_path / "hf")
    ds = load_from_disk(str(tmp_path / "hf"))
    assert ds.num_rows == len(synth)
    assert ds["sample_id"] == [s.sample_id for s in synth]
    assert ds["label"] == [s.label for s in synth]
    assert ds["box_labels"] == [s.box_labels if s.boxes is not None else None for s in synth]
    for row, s in zip(ds, synth):
        assert row["image"].size == (s.width, s.height)
        if s.boxes is not None:
            np.testing.assert_allclose(np.array(row["boxes"]).reshape(-1, 4), s.boxes)
        if s.mask_path:
            values = {d["value"]: d["label"] for d in row["mask_values"]}
            assert values == s.mask_values
            assert np.array_equal(np.asarray(row["mask"]), np.asarray(Image.open(s.mask_path)))
        assert [q["answer"] for q in row["qa"]] == [q.answer for q in s.qa]
        assert row["report"] == s.report
        if s.attributes:
            assert {k: v for k, v in row["attributes"].items() if v is not None} == s.attributes


def test_detectron2_records(synth):
    classes = default_classes(synth)
    records = detectron2_records(synth, classes)
    assert len(records) == len(synth)
    for i, (rec, s) in enumerate(zip(records, synth)):
        assert rec["image_id"] == i and rec["file_name"] == s.image_path
        assert (rec["height"], rec["width"]) == (s.height, s.width)
        assert len(rec["annotations"]) == s.num_boxes
        for ann, box, name in zip(rec["annotations"], (s.boxes if s.boxes is not None else []),
                                  s.box_labels or []):
            assert ann["bbox_mode"] == 0 and classes[ann["category_id"]] == name
            np.testing.assert_allclose(ann["bbox"], box, atol=1e-4)
    with pytest.raises(DataError, match="not in classes"):
        detectron2_records([s for s in synth if s.num_boxes], ["platelet"])


def test_register_detectron2(synth, monkeypatch):
    """detectron2 cannot be installed here, so a minimal stand-in of its two catalogs is
    injected through ``sys.modules``: the one place a stand-in is used in the test suite."""
    catalog, metadata = {}, {}

    class _Meta(types.SimpleNamespace):
        def set(self, **kw):
            self.__dict__.update(kw)

    data = types.ModuleType("detectron2.data")
    data.DatasetCatalog = types.SimpleNamespace(register=catalog.__setitem__)
    data.MetadataCatalog = types.SimpleNamespace(get=lambda n: metadata.setdefault(n, _Meta()))
    pkg = types.ModuleType("detectron2")
    pkg.data = data
    monkeypatch.setitem(sys.modules, "detectron2", pkg)
    monkeypatch.setitem(sys.modules, "detectron2.data", data)

    calls = []
    classes = default_classes(synth)
    register_detectron2("synth_val", lambda: calls.append(1) or synth, classes)
    assert calls == []  # lazy: samples are loaded when detectron2 asks
    assert metadata["synth_val"].thing_classes == classes
    assert catalog["synth_val"]() == detectron2_records(synth, classes)


def test_register_detectron2_without_detectron2(monkeypatch):
    monkeypatch.setitem(sys.modules, "detectron2", None)
    monkeypatch.setitem(sys.modules, "detectron2.data", None)
    with pytest.raises(ImportError, match="detectron2_records"):
        register_detectron2("x", list, ["platelet"])


def test_cli_export(synth_root, tmp_path, capsys):
    out = tmp_path / "coco"
    assert main(["data", "export", "synthetic_smear", "--root", str(synth_root), "--split",
                 "val", "test", "--to", "coco", "--out", str(out)]) == 0
    assert "[val]" in capsys.readouterr().out
    n_test = len(load_dataset("synthetic_smear", synth_root, "test"))
    assert len(COCO(str(out / "test.json")).getImgIds()) == n_test

    from datasets import DatasetDict, load_from_disk

    hf = tmp_path / "hf"
    assert main(["data", "export", "synthetic_smear", "--root", str(synth_root), "--split",
                 "val", "test", "--to", "hf", "--out", str(hf)]) == 0
    loaded = load_from_disk(str(hf))
    assert isinstance(loaded, DatasetDict) and set(loaded) == {"val", "test"}
    assert loaded["test"].num_rows == n_test


def test_bccd_test_split_round_trips(shared_datasets, tmp_path):
    root = shared_datasets / "BCCD"
    if not root.is_dir() or "bccd" not in ADAPTERS:
        pytest.skip("BCCD data or the bccd adapter is not available")
    samples = load_dataset("bccd", root, "test")
    to_coco(samples, tmp_path / "bccd_test.json")
    coco = COCO(str(tmp_path / "bccd_test.json"))
    assert len(coco.getImgIds()) == len(samples) == 72
    assert len(coco.getAnnIds()) == sum(s.num_boxes for s in samples)
    for image_id, s in enumerate(samples, start=1):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        xyxy = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)])
        np.testing.assert_allclose(xyxy.reshape(-1, 4), s.boxes, atol=1e-3)
