"""Per-entry class lists: mapping fine labels onto a coarser taxonomy (``DatasetEntry.classes``)."""

from __future__ import annotations

import numpy as np
import pytest

from unihema.config.loader import load_config
from unihema.data.catalog import DataError
from unihema.data.sample import UnifiedSample
from unihema.engine.data import (build_task_splits, build_train_loader, check_trunk_items,
                                 mixture_sources, relabel, restrict_to_candidates)

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


def test_candidates_leave_out_crops_and_boxes_of_other_classes():
    crops = [UnifiedSample(dataset="t", split="test", sample_id=f"c{i}", image_path="c.png",
                           width=32, height=32, label=lb, label_set=["a", "b"])
             for i, lb in enumerate(["band neutrophil", "lymphocyte", "myeloblast"])]
    out, left = restrict_to_candidates(crops, "classify", ["neutrophil", "lymphocyte"], "t/test")
    assert [(s.sample_id, s.label) for s in out] == [("c0", "neutrophil"), ("c1", "lymphocyte")]
    assert left == 1 and all(s.label_set == ["neutrophil", "lymphocyte"] for s in out)
    field = _field(["monocyte", "red blood cell", "platelet"])
    (f,), left = restrict_to_candidates([field], "detect", ["white blood cell", "platelet"])
    assert f.box_labels == ["white blood cell", "platelet"] and left == 1
    assert f.boxes.tolist() == [field.boxes[0].tolist(), field.boxes[2].tolist()]
    assert f.meta["classes_detect"] == ["white blood cell", "platelet"]
    assert field.box_labels[0] == "monocyte"  # the original is untouched


@pytest.mark.parametrize("task, names, message", [
    ("segment", ["nucleus"], "for \\['detect', 'classify'\\], not 'segment'"),
    ("classify", ["lymphocyte", "lymphocyte"], "distinct class names"),
    ("classify", [], "distinct class names"),
])
def test_candidate_errors(task, names, message):
    with pytest.raises(ValueError, match=message):
        restrict_to_candidates([], task, names, "t/test")


def test_entry_candidates_reach_the_split_prompt(synth_root):
    from unihema.synth import WHITE_TYPES

    keep = list(WHITE_TYPES[:3])
    entry = (f"data.test=[{{name: synthetic_smear, root: '{synth_root}', split: test, "
             f"tasks: [classify], candidates: {{classify: [{', '.join(keep)}]}}}}]")
    cfg = load_config(None, [entry])
    (split,) = build_task_splits(cfg.data.test, cfg, train=False)
    assert split.samples and {s.label for s in split.samples} <= set(keep)
    assert split.dataset[0]["classes"] == keep


def test_where_selects_one_acquisition_of_a_dataset(tmp_path):
    """WBC-Seg-Zheng holds two instruments' images: ``where`` trains or scores on one."""
    from dataset_adapters.wbc_seg_zheng import WBCSegZheng

    WBCSegZheng.write_example(tmp_path)
    base = f"{{name: wbc_seg_zheng, root: '{tmp_path}', split: train, tasks: [classify]"
    cfg = load_config(None, [f"data.train=[{base}}}, {base}, where: {{subset: Dataset 2}}}}]"])
    every, two = build_task_splits(cfg.data.train, cfg, train=True)
    assert {s.sample_id[:3] for s in every.samples} == {"d1_", "d2_"}
    assert two.samples and {s.sample_id[:3] for s in two.samples} == {"d2_"}
    assert len(two.samples) == sum(s.sample_id.startswith("d2_") for s in every.samples)
    whole = load_config(None, [f"data.test=[{base.replace('train', 'all')}, "
                               f"where: {{subset: Dataset 2}}}}]"])
    (all_two,) = build_task_splits(whole.data.test, whole, train=False)
    assert len(all_two.samples) == 3  # the fixture's Dataset 2, every split
    assert {s.sample_id for s in two.samples} < {s.sample_id for s in all_two.samples}
    bad = load_config(None, [f"data.train=[{base}, where: {{subset: dataset 2}}}}]"])
    with pytest.raises(ValueError, match=r"matches none of .*'Dataset 1', 'Dataset 2'"):
        build_task_splits(bad.data.train, bad, train=True)


def test_tasks_with_crops_and_fields_draw_batches_of_one_size(synth_root):
    """VQA asks about 160-pixel fields and 96-pixel crops: each becomes its own source, the crop
    source with a larger batch, the weights shared so every item is drawn equally often."""
    entry = (f"data.train=[{{name: synthetic_smear, root: '{synth_root}', split: train, "
             f"tasks: [vqa, classify]}}]")
    cfg = load_config(None, [entry, "data.image_size=160", "data.batch_size=4",
                             "data.task_weights={vqa: 3.0}"])
    splits = build_task_splits(cfg.data.train, cfg, train=True)
    sources, datasets = mixture_sources(cfg, splits)
    vqa = [s for s in sources if s.task == "vqa"]
    assert [s.name.rsplit("@", 1)[1] for s in vqa] == ["160px", "128px"]
    assert [s.batch_size for s in vqa] == [4, 8]  # round((160 / 128) ** 2) = 2x the batch
    split = next(s for s in splits if s.task == "vqa")
    assert sum(s.size for s in vqa) == len(split.dataset)  # every QA pair, once
    assert sum(s.weight for s in vqa) == pytest.approx(3.0)
    rates = [s.weight * s.batch_size / s.size for s in vqa]
    assert rates[0] == pytest.approx(rates[1])
    # a task with one image size stays one source
    assert [s.name for s in sources if s.task == "classify"] == [
        next(s for s in splits if s.task == "classify").name]
    loader, _ = build_train_loader(cfg, splits, max_steps=12)
    seen = 0
    for batch in loader:
        if batch["task"] == "vqa":
            sides = {max(int(h), int(w)) for h, w in batch["orig_sizes"]}
            assert len(sides) == 1, sides
            seen += 1
    assert seen


def test_vqa_trains_on_every_question_pair(synth_root):
    entry = (f"data.train=[{{name: synthetic_smear, root: '{synth_root}', split: train, "
             f"tasks: [vqa]}}]")
    cfg = load_config(None, [entry])
    (split,) = build_task_splits(cfg.data.train, cfg, train=True)
    assert len(split.dataset) == sum(len(s.qa) for s in split.samples)
    questions = {split.dataset[i]["question"] for i in range(len(split.dataset))}
    assert questions == {q.question for s in split.samples for q in s.qa}


def test_balance_draws_every_label_about_equally_often(synth_root):
    """data.balance.classify = 1: plain red cells (the commonest crops) and each white-cell
    type come out about equally often; 0.5 lies between; the source keeps one weight per
    item, normalised to mean 1."""
    entry = (f"data.train=[{{name: synthetic_smear, root: '{synth_root}', split: train, "
             f"tasks: [classify]}}]")
    from collections import Counter

    cfg = load_config(None, [entry, "data.balance={classify: 1.0}"])
    (split,) = build_task_splits(cfg.data.train, cfg, train=True)
    labels = [split.samples[i].label for i, _ in split.dataset.items]
    counts = Counter(labels)
    assert max(counts.values()) >= 3 * min(counts.values())  # the stored mix is skewed
    (source,), _ = mixture_sources(cfg, [split])
    assert len(source.item_weights) == len(labels)
    assert np.mean(source.item_weights) == pytest.approx(1.0)
    mass = Counter()
    for lb, w in zip(labels, source.item_weights):
        mass[lb] += w
    assert max(mass.values()) == pytest.approx(min(mass.values()))
    half = load_config(None, [entry, "data.balance={classify: 0.5}"])
    (source_half,), _ = mixture_sources(half, [split])
    share = {lb: sum(w for x, w in zip(labels, source_half.item_weights) if x == lb)
             for lb in counts}
    top = max(counts, key=counts.get)
    assert counts[top] / len(labels) > share[top] / len(labels) > 1 / len(counts)
    loader, _ = build_train_loader(cfg, [split], max_steps=60)
    drawn = Counter(lb for batch in loader for lb in
                    (batch["classes"][i][int(y)] for i, y in enumerate(batch["labels"])))
    rare = min(counts, key=counts.get)
    assert drawn[rare] / sum(drawn.values()) > 2 * counts[rare] / len(labels)


def test_balance_errors_name_the_setting(synth_root):
    entry = (f"data.train=[{{name: synthetic_smear, root: '{synth_root}', split: train, "
             f"tasks: [classify, detect]}}]")
    cfg = load_config(None, [entry, "data.balance={detect: 1.0}"])
    with pytest.raises(ValueError, match="data.balance.detect: class-balanced sampling needs"):
        mixture_sources(cfg, build_task_splits(cfg.data.train, cfg, train=True))
    # a value outside [0, 1] is refused when the config loads, with its key path
    with pytest.raises(ValueError, match=r"data.balance.classify: 2.0 is outside the allowed "
                                         r"range \[0.0, 1.0\]"):
        load_config(None, [entry, "data.balance={classify: 2.0}"])


def test_trunk_items_enlarge_the_batches_of_their_task(synth_root):
    entry = (f"data.train=[{{name: synthetic_smear, root: '{synth_root}', split: train, "
             f"tasks: [classify, morphology]}}]")
    base = [entry, "data.task_batch_size={classify: 6}", "data.batch_size=2"]
    cfg = load_config(None, base + ["data.trunk_items={classify: 4, morphology: 3}"])
    splits = build_task_splits(cfg.data.train, cfg, train=True)
    sizes = {s.task: s.batch_size for s in mixture_sources(cfg, splits)[0]}
    plain = {s.task: s.batch_size for s in mixture_sources(load_config(None, base),
                                                             splits)[0]}
    # classify: its own 6 + 4; morphology: the default 2 + 3
    assert sizes == {"classify": 10, "morphology": 5}
    assert plain == {"classify": 6, "morphology": None}
    assert check_trunk_items(cfg) == {"classify": 4, "morphology": 3}
    zero = load_config(None, base + ["data.trunk_items={classify: 0}"])
    assert check_trunk_items(zero) == {}
    loader, _ = build_train_loader(cfg, splits, max_steps=12)
    lengths = {}
    for b in loader:
        lengths.setdefault(b["task"], set()).add(len(b["keys"]))
    assert lengths == {"classify": {10}, "morphology": {5}}


def test_trunk_items_errors_name_the_setting():
    with pytest.raises(ValueError, match=r"data.trunk_items.detect: .*only \['classify', "
                                         r"'morphology'\]"):
        check_trunk_items(load_config(None, ["data.trunk_items={detect: 8}"]))
    with pytest.raises(ValueError, match=r"data.trunk_items.classify: -1 is outside the "
                                         r"allowed range \[0, 100000\]"):
        load_config(None, ["data.trunk_items={classify: -1}"])
