"""Per-entry class lists: mapping fine labels onto a coarser taxonomy (``DatasetEntry.classes``)."""

from __future__ import annotations

import numpy as np
import pytest

from unihema.config.loader import load_config
from unihema.data.catalog import DataError
from unihema.data.sample import UnifiedSample
from unihema.engine.data import build_task_splits, relabel

LINEAGES = ["red blood cell", "white blood cell", "platelet", "malaria parasite"]


def _field(labels):
    boxes = np.array([[i * 10, 0, i * 10 + 8, 8] for i in range(len(labels))], dtype=np.float32)
    return UnifiedSample(dataset="t", split="train", sample_id="f0", image_path="f0.png",
                         width=64, height=64, boxes=boxes, box_labels=list(labels))


def test_detect_labels_map_to_their_lineage_and_originals_stay():
    s = _field(["target cell", "monocyte", "platelet", "ring form", "red blood cell"])
    (out,) = relabel([s], "detect", LINEAGES, "t/train")
    assert out.box_labels == ["red blood cell", "white blood cell", "platelet",
                              "malaria parasite", "red blood cell"]
    assert out.meta["classes_detect"] == LINEAGES
    assert s.box_labels[0] == "target cell"  # other tasks keep the fine labels
    assert "classes_detect" not in s.meta


def test_classify_and_segment_relabel():
    crop = UnifiedSample(dataset="t", split="train", sample_id="c0", image_path="c0.png",
                         width=32, height=32, label="band neutrophil",
                         label_set=["band neutrophil", "lymphocyte"])
    (out,) = relabel([crop], "classify", ["neutrophil", "lymphocyte"])
    assert out.label == "neutrophil" and out.label_set == ["neutrophil", "lymphocyte"]
    seg = UnifiedSample(dataset="t", split="train", sample_id="m0", image_path="m0.png",
                        width=32, height=32, mask_path="m0.png",
                        mask_values={0: "background", 1: "nucleus", 2: "cytoplasm"})
    with pytest.raises(DataError, match="'nucleus' is not a kind of any"):
        relabel([seg], "segment", ["red blood cell"], "t/train")


def test_label_outside_every_class_names_sample_and_label():
    with pytest.raises(DataError, match=r"t/train: .*'monocyte' is not a kind of any"):
        relabel([_field(["monocyte"])], "detect", ["red blood cell", "platelet"], "t/train")


def test_entry_classes_reach_the_detection_split(synth_root):
    entry = (f"data.train=[{{name: synthetic_smear, root: '{synth_root}', split: train, "
             f"tasks: [detect, classify], classes: {{detect: [{', '.join(LINEAGES)}]}}}}]")
    cfg = load_config(None, [entry])
    splits = {s.task: s for s in build_task_splits(cfg.data.train, cfg, train=True)}
    labels = {lb for s in splits["detect"].samples for lb in s.box_labels}
    assert labels <= set(LINEAGES) and "red blood cell" in labels
    item = splits["detect"].dataset[0]
    assert item["classes"] == LINEAGES
    # classification of the same entry keeps its fine types
    assert {s.label for s in splits["classify"].samples} - set(LINEAGES)


def test_classes_for_a_task_without_labels_is_an_error(synth_root):
    entry = (f"data.train=[{{name: synthetic_smear, root: '{synth_root}', split: train, "
             f"classes: {{vqa: [red blood cell]}}}}]")
    cfg = load_config(None, [entry])
    with pytest.raises(ValueError, match="only .*detect"):
        build_task_splits(cfg.data.train, cfg, train=True)
