"""SegmentEvaluator: dataset-level Dice / IoU by hand, ignore pixels, padding, class names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unihema.evaluation import EVALUATORS
from unihema.evaluation import tasks  # noqa: F401  (registers the evaluators)
from unihema.evaluation.segment import SegmentEvaluator

CLASSES = ["background", "nucleus", "cytoplasm"]


def masks(*arrays, size=None):
    """Pad item masks with -1 to a common size, like collate."""
    h = size[0] if size else max(a.shape[0] for a in arrays)
    w = size[1] if size else max(a.shape[1] for a in arrays)
    out = torch.full((len(arrays), h, w), -1, dtype=torch.int64)
    for i, a in enumerate(arrays):
        out[i, : a.shape[0], : a.shape[1]] = torch.as_tensor(a)
    return out


GT = np.array([
    [0, 0, 1, 1],
    [0, 1, 1, 2],
    [2, 2, 2, -1],   # one pixel the annotation ignores
])
PRED = np.array([
    [0, 1, 1, 1],
    [0, 1, 2, 2],
    [2, 2, 0, 1],    # the prediction under the ignored pixel does not count
])


def test_registered():
    assert EVALUATORS.get("segment") is SegmentEvaluator


def test_dice_by_hand_with_ignore_pixels():
    ev = SegmentEvaluator()
    ev.process({"classes": [CLASSES], "masks": masks(GT)}, [{"mask": torch.tensor(PRED)}])
    m = ev.evaluate()
    # scored pixels: 11. background gt 3 / pred 3 / both 2; nucleus gt 4 / pred 4 / both 3;
    # cytoplasm gt 4 / pred 4 / both 3.
    assert m["dice/background"] == pytest.approx(2 * 2 / 6)
    assert m["dice/nucleus"] == pytest.approx(2 * 3 / 8)
    assert m["iou/nucleus"] == pytest.approx(3 / 5)
    assert m["dice/cytoplasm"] == pytest.approx(2 * 3 / 8)
    assert m["mean_dice_fg"] == pytest.approx(0.75)
    assert m["mean_iou_fg"] == pytest.approx(0.6)
    assert m["pixel_accuracy"] == pytest.approx(8 / 11)
    assert ev.class_names == CLASSES and ev.confusion.sum() == 11


def test_padded_prediction_and_dataset_level_accumulation():
    small = np.array([[1, 1], [0, 0]])
    b = masks(GT, small)  # padded to 3 x 4
    pred_small = torch.zeros(3, 4, dtype=torch.int64)  # given at the padded size
    ev = SegmentEvaluator()
    ev.process({"classes": [CLASSES, ["background", "nucleus"]], "masks": b},
               [{"mask": torch.tensor(PRED)}, {"mask": pred_small}])
    m = ev.evaluate()
    # nucleus summed over both images: gt 4 + 2, pred 4 + 0, intersection 3 + 0
    assert m["dice/nucleus"] == pytest.approx(2 * 3 / 10)
    # background: gt 3 + 2, pred 3 + 4, intersection 2 + 2
    assert m["dice/background"] == pytest.approx(2 * 4 / 12)
    assert m["pixel_accuracy"] == pytest.approx((8 + 2) / 15)


def test_item_sized_prediction_in_padded_batch():
    b = masks(GT, size=(32, 32))
    ev = SegmentEvaluator()
    ev.process({"classes": [CLASSES], "masks": b}, [{"mask": torch.tensor(GT).clamp(min=0)}])
    assert ev.evaluate()["mean_dice_fg"] == pytest.approx(1.0)


def test_classes_by_name_across_orders():
    ev = SegmentEvaluator()
    gt = np.array([[0, 1]])
    ev.process({"classes": [["background", "nucleus"]], "masks": masks(gt)},
               [{"mask": np.array([[0, 1]])}])
    ev.process({"classes": [["background", "cytoplasm", "nucleus"]], "masks": masks(gt + gt)},
               [{"mask": np.array([[0, 2]])}])
    m = ev.evaluate()
    assert m["dice/nucleus"] == pytest.approx(1.0)
    assert "dice/cytoplasm" not in m  # neither predicted nor present


def test_foreground_mean_skips_absent_classes_and_background():
    ev = SegmentEvaluator()
    gt = np.array([[0, 0, 1, 1]])
    ev.process({"classes": [CLASSES], "masks": masks(gt)}, [{"mask": np.array([[0, 2, 1, 1]])}])
    m = ev.evaluate()
    assert m["dice/cytoplasm"] == 0.0  # predicted only: reported, but not in the fg mean
    assert m["mean_dice_fg"] == pytest.approx(1.0)


def test_degenerate_inputs():
    ev = SegmentEvaluator()
    assert ev.evaluate() == {}
    ev.process({"classes": [CLASSES], "masks": masks(np.full((2, 2), -1))},
               [{"mask": np.zeros((2, 2))}])
    assert ev.evaluate() == {}  # every pixel ignored
    ev.process({"classes": [CLASSES], "masks": masks(np.zeros((2, 2), int))},
               [{"mask": np.zeros((2, 2))}])
    m = ev.evaluate()
    assert m["mean_dice_fg"] == 0.0 and m["dice/background"] == 1.0


def test_bad_inputs_fail_loudly():
    ev = SegmentEvaluator()
    with pytest.raises(ValueError, match="does not cover"):
        ev.process({"classes": [CLASSES], "masks": masks(GT)}, [{"mask": np.zeros((2, 2))}])
    with pytest.raises(ValueError, match="out of range"):
        ev.process({"classes": [CLASSES], "masks": masks(GT)}, [{"mask": np.full((3, 4), 5)}])
    with pytest.raises(ValueError, match="larger"):
        ev.process({"classes": [CLASSES], "masks": masks(GT)}, [{"mask": np.zeros((4, 4))}])


def test_no_foreground_predicted_and_one_class():
    ev = SegmentEvaluator()
    ev.process({"classes": [CLASSES], "masks": masks(GT)}, [{"mask": np.zeros((3, 4))}])
    m = ev.evaluate()  # the model finds nothing: every foreground class scores 0
    assert m["dice/nucleus"] == 0.0 and m["dice/cytoplasm"] == 0.0
    assert m["mean_dice_fg"] == 0.0 and m["pixel_accuracy"] == pytest.approx(3 / 11)
    ev = SegmentEvaluator()
    ev.process({"classes": [["background"]], "masks": masks(np.zeros((2, 3), int))},
               [{"mask": np.zeros((2, 3))}])
    m = ev.evaluate()
    assert m["dice/background"] == 1.0 and m["mean_dice_fg"] == 0.0
    assert ev.class_names == ["background"] and ev.confusion.tolist() == [[6]]


def test_agrees_with_torchmetrics_dataset_level_iou_and_dice():
    """Reference check on random masks with ignored pixels: IoU against torchmetrics'
    MulticlassJaccardIndex (per class, over the whole dataset) and Dice = 2 IoU / (1 + IoU)."""
    from torchmetrics.classification import MulticlassJaccardIndex

    rng = np.random.default_rng(0)
    gts = [rng.integers(0, 3, (12, 10)) for _ in range(4)]
    preds = [np.where(rng.random(g.shape) < 0.6, g, rng.integers(0, 3, g.shape)) for g in gts]
    for g in gts:
        g[rng.random(g.shape) < 0.1] = -1
    ev = SegmentEvaluator()
    ev.process({"classes": [CLASSES] * 4, "masks": masks(*gts)},
               [{"mask": torch.as_tensor(p)} for p in preds])
    m = ev.evaluate()
    ref = MulticlassJaccardIndex(num_classes=3, average=None, ignore_index=-1)
    for g, p in zip(gts, preds):
        ref.update(torch.as_tensor(p), torch.as_tensor(g))
    iou = ref.compute().numpy()
    for k, name in enumerate(CLASSES):
        assert m[f"iou/{name}"] == pytest.approx(iou[k], abs=1e-6)
        assert m[f"dice/{name}"] == pytest.approx(2 * iou[k] / (1 + iou[k]), abs=1e-6)
    assert m["mean_iou_fg"] == pytest.approx(iou[1:].mean(), abs=1e-6)
