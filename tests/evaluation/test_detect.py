"""DetectEvaluator: hand-computed COCO AP, degenerate inputs, backend agreement, counting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unihema.evaluation import EVALUATORS
from unihema.evaluation import tasks  # noqa: F401  (registers the evaluators)
from unihema.evaluation.detect import BACKENDS, DetectEvaluator, detect_metrics

# COCO interpolates precision at 101 recall points; reaching recall 0.5 covers 51 of them.
HALF = 51 / 101


def pred(boxes, scores, classes):
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "scores": torch.tensor(scores, dtype=torch.float32),
            "classes": torch.tensor(classes, dtype=torch.int64)}


def gt(classes, boxes, box_classes):
    return (classes, torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            torch.tensor(box_classes, dtype=torch.int64))


TWO_CELLS = gt(["red blood cell"], [[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0])


def test_registered():
    assert EVALUATORS.get("detect") is DetectEvaluator


@pytest.mark.parametrize("use", BACKENDS)
def test_perfect_detector_scores_one(use):
    g = gt(["a", "b"], [[0, 0, 10, 10], [20, 20, 40, 40], [50, 5, 60, 30]], [0, 1, 1])
    m = detect_metrics([g], [pred(g[1].tolist(), [0.9, 0.8, 0.7], [0, 1, 1])], use=use)
    assert m["mAP"] == pytest.approx(1.0)
    for key in ("mAP50", "mAP75", "AP/a", "AP50/a", "AP/b", "AP50/b"):
        assert m[key] == pytest.approx(1.0), key
    assert m["count_mae"] == 0.0


@pytest.mark.parametrize("use", BACKENDS)
def test_one_of_two_found_score_order(use):
    # TP ranked first: precision 1 up to recall 0.5.
    found_one = [[0, 0, 10, 10], [50, 50, 60, 60]]
    m = detect_metrics([TWO_CELLS], [pred(found_one, [0.9, 0.8], [0, 0])], use=use)
    assert m["mAP"] == pytest.approx(HALF, abs=1e-9)
    assert m["AP50/red blood cell"] == pytest.approx(HALF, abs=1e-9)
    # FP ranked first: the interpolated precision is 0.5 at every recall up to 0.5.
    m = detect_metrics([TWO_CELLS], [pred(found_one, [0.8, 0.9], [0, 0])], use=use)
    assert m["mAP"] == pytest.approx(HALF / 2, abs=1e-9)


@pytest.mark.parametrize("use", BACKENDS)
def test_iou_062_counts_at_050_not_075(use):
    g = gt(["a"], [[0, 0, 10, 10]], [0])
    m = detect_metrics([g], [pred([[0, 0, 10, 6.2]], [0.9], [0])], use=use)  # IoU 0.62
    assert m["mAP50"] == pytest.approx(1.0)
    assert m["mAP75"] == pytest.approx(0.0)
    assert m["mAP"] == pytest.approx(0.3)  # matched at IoU 0.50, 0.55, 0.60 of ten thresholds


@pytest.mark.parametrize("use", BACKENDS)
def test_no_predictions_and_images_without_gt(use):
    empty = pred([], [], [])
    m = detect_metrics([TWO_CELLS, gt(["red blood cell"], [], [])], [empty, empty], use=use)
    assert m["mAP"] == 0.0 and m["mAP50"] == 0.0
    assert m["count_mae"] == pytest.approx(1.0)  # |0 - 2| and |0 - 0| over two images
    # a false positive on an image without cells lowers precision
    fp = pred([[100, 100, 110, 110]], [0.95], [0])
    m = detect_metrics([TWO_CELLS, gt(["red blood cell"], [], [])],
                       [pred(TWO_CELLS[1].tolist(), [0.9, 0.8], [0, 0]), fp], use=use)
    # ranked FP, TP, TP: precision 0, 1/2, 2/3 at recall 0, 1/2, 1; interpolated: 2/3 throughout
    assert m["mAP"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("use", BACKENDS)
def test_no_gt_at_all_is_minus_one_not_nan(use):
    m = detect_metrics([gt(["a"], [], [])], [pred([[0, 0, 1, 1]], [0.9], [0])], use=use)
    assert m["mAP"] == -1.0 and "AP/a" not in m
    assert m["count_mae/a"] == 1.0
    assert not any(np.isnan(v) for v in m.values())


def test_class_without_gt_is_excluded_from_mean():
    g = gt(["a", "b"], [[0, 0, 10, 10]], [0])
    m = detect_metrics([g], [pred([[0, 0, 10, 10], [30, 30, 40, 40]], [0.9, 0.9], [0, 1])])
    assert m["mAP"] == pytest.approx(1.0)
    assert "AP/b" not in m and m["count_mae/b"] == 1.0
    assert m["count_mae"] == pytest.approx(0.5)


def test_classes_aggregate_by_name_across_orders_and_batches():
    ev = DetectEvaluator()
    ev.process({"classes": [["a", "b"]], "boxes": [torch.tensor([[0.0, 0, 10, 10]])],
                "box_classes": [torch.tensor([1])]},
               [pred([[0, 0, 10, 10]], [0.9], [1])])
    ev.process({"classes": [["b", "a"]], "boxes": [torch.tensor([[0.0, 0, 10, 10]])],
                "box_classes": [torch.tensor([0])]},
               [pred([[0, 0, 10, 10]], [0.9], [0])])
    m = ev.evaluate()
    assert m["AP/b"] == pytest.approx(1.0) and "AP/a" not in m
    assert ev.per_class["b"]["num_gt"] == 2
    rec, prec = ev.pr_curves["b"]
    assert rec.shape == prec.shape == (101,)


def test_max_dets_beyond_coco_default():
    # 150 cells in one image: COCO's default maxDets=100 would cap recall at 2/3.
    boxes = [[20 * i, 0, 20 * i + 10, 10] for i in range(150)]
    g = gt(["red blood cell"], boxes, [0] * 150)
    p = pred(boxes, np.linspace(1.0, 0.5, 150).tolist(), [0] * 150)
    assert detect_metrics([g], [p])["mAP"] == pytest.approx(1.0)
    assert detect_metrics([g], [p], max_dets=100)["mAP"] < 0.7


def test_count_threshold():
    p = pred([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]], [0.9, 0.6, 0.3], [0, 0, 0])
    assert detect_metrics([TWO_CELLS], [p])["count_mae"] == 0.0
    assert detect_metrics([TWO_CELLS], [p], count_threshold=0.2)["count_mae"] == 1.0
    assert detect_metrics([TWO_CELLS], [p], count_threshold=0.7)["count_mae"] == 1.0


def test_backends_agree_on_random_fields():
    rng = np.random.default_rng(0)
    names = ["red blood cell", "white blood cell", "platelet"]
    gts, preds = [], []
    for _ in range(12):
        n = int(rng.integers(0, 25))
        xy = rng.uniform(0, 200, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (n, 2))], 1)
        cls = rng.integers(0, 3, n)
        gts.append(gt(names, boxes.tolist(), cls.tolist()))
        k = int(rng.integers(0, 40))
        src = boxes[rng.integers(0, max(n, 1), k)] if n else rng.uniform(0, 200, (k, 4))
        jitter = src + rng.normal(0, 3, (k, 4))
        jitter[:, 2:] = np.maximum(jitter[:, 2:], jitter[:, :2] + 1)
        preds.append(pred(jitter.tolist(), rng.uniform(0, 1, k).tolist(),
                          rng.integers(0, 3, k).tolist()))
    a = detect_metrics(gts, preds, use="pycocotools")
    b = detect_metrics(gts, preds, use="faster_coco_eval")
    assert 0.0 < a["mAP"] < 1.0
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=1e-6), key


def test_bad_inputs_fail_loudly():
    with pytest.raises(ValueError, match="use must be one of"):
        DetectEvaluator(use="detectron2")
    with pytest.raises(ValueError, match="iou_type"):
        DetectEvaluator(iou_type="segm")
    with pytest.raises(ValueError, match="out of range"):
        detect_metrics([TWO_CELLS], [pred([[0, 0, 1, 1]], [0.9], [3])])
    with pytest.raises(ValueError, match="same length"):
        detect_metrics([TWO_CELLS], [pred([[0, 0, 1, 1]], [0.9, 0.8], [0])])
    assert DetectEvaluator().evaluate() == {}


# ----------------------------------------------------------------------------- contract
# One round trip over every task, kept here for want of a shared file: real items from the
# synthetic generator, collated as in evaluation, scored against oracle predictions built from
# the ground truth. It catches drift between collate's batch keys and what evaluators read.
def _oracle(task, b):
    n = len(b["keys"])
    if task == "detect":
        return [{"boxes": b["boxes"][i], "scores": torch.ones(len(b["boxes"][i])),
                 "classes": b["box_classes"][i]} for i in range(n)]
    if task == "segment":
        return [{"mask": b["masks"][i].clamp(min=0)} for i in range(n)]
    if task == "classify":
        return [{"probs": torch.eye(len(b["classes"][i]))[b["labels"][i]],
                 "label": int(b["labels"][i])} for i in range(n)]
    if task == "morphology":
        return [{"attributes": b["attributes"][i], "text": b["targets"][i]} for i in range(n)]
    return [{"text": t} for t in b["targets"]]


@pytest.mark.parametrize("task, metric", [
    ("detect", "mAP"), ("segment", "mean_dice_fg"), ("classify", "macro_f1"),
    ("morphology", "mean_attribute_accuracy"), ("vqa", "exact_match"), ("mlm", "token_accuracy"),
])
def test_oracle_on_synthetic_batches(synth_root, task, metric):
    from dataset_adapters.synthetic_smear import SyntheticSmear
    from unihema.pipeline.collate import collate
    from unihema.pipeline.mapper import DatasetMapper, TaskDataset

    samples = SyntheticSmear(synth_root).load("val")
    ds = TaskDataset(samples, task, DatasetMapper(image_size=160, augment=None, train=False),
                     train=False)
    ev = EVALUATORS.get(task)()
    ev.reset()
    for start in range(0, len(ds), 2):
        b = collate([ds[i] for i in range(start, min(start + 2, len(ds)))])
        ev.process(b, _oracle(task, b))
    m = ev.evaluate()
    assert m[metric] == pytest.approx(1.0)
    assert all(isinstance(v, float) and v == v for v in m.values())


def test_no_classes_prompted_and_no_pr_curves_without_gt():
    empty = pred([], [], [])
    m = detect_metrics([gt([], [], [])], [empty])
    assert m == {"mAP": -1.0, "mAP50": -1.0, "mAP75": -1.0, "count_mae": 0.0}
    ev = DetectEvaluator()
    ev.process({"classes": [["a"]], "boxes": [torch.zeros(0, 4)],
                "box_classes": [torch.zeros(0, dtype=torch.int64)]},
               [pred([[0, 0, 5, 5]], [0.9], [0])])
    ev.evaluate()
    assert ev.pr_curves == {} and ev.per_class["a"]["num_gt"] == 0.0
