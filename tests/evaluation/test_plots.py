"""Plots from hand-made evaluator states, per-item scores and the gallery picker."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from unihema.evaluation.classify import reliability_bins, risk_coverage
from unihema.evaluation.plots import (
    GalleryPicker,
    box_f1,
    image_uint8,
    item_score,
    plot_confusion,
    plot_gallery,
    plot_pr_curves,
    plot_reliability,
    plot_risk_coverage,
)


def valid_png(path, min_side=200):
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and min(im.size) >= min_side, im.size
    assert not list(path.parent.glob("*.tmp"))  # written through a temporary file
    return path


# ----------------------------------------------------------------------------- curves
def test_pr_curves(tmp_path):
    rec = np.linspace(0, 1, 101)
    curves = {"red blood cell": (rec, np.where(rec <= 0.8, 0.9, 0.0)),
              "platelet": (rec, np.where(rec <= 0.5, 1.0, 0.0))}
    valid_png(plot_pr_curves(curves, tmp_path / "pr.png", title="m — detect",
                             ap50={"red blood cell": 0.72, "platelet": 0.5}))
    valid_png(plot_pr_curves({}, tmp_path / "none.png", title="no ground truth"))


def test_confusion_counts_and_fractions(tmp_path):
    cm = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])  # a class never true: a row of zeros
    names = ["neutrophil", "lymphocyte", "monocyte"]
    valid_png(plot_confusion(cm, names, tmp_path / "c.png", title="classify"))
    valid_png(plot_confusion(cm * 1000, names, tmp_path / "s.png", title="segment",
                             annotate="fraction", what="pixels"))
    with pytest.raises(ValueError, match="does not match 2 class names"):
        plot_confusion(cm, names[:2], tmp_path / "x.png", title="x")
    with pytest.raises(ValueError, match="annotate"):
        plot_confusion(cm, names, tmp_path / "x.png", title="x", annotate="percent")


def test_reliability_and_risk_coverage(tmp_path):
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.3, 1.0, 200)
    correct = rng.uniform(size=200) < conf
    valid_png(plot_reliability(reliability_bins(conf, correct), tmp_path / "r.png",
                               title="classify", ece=0.05))
    curve = risk_coverage(conf, correct)
    valid_png(plot_risk_coverage(curve, tmp_path / "rc.png", title="classify", aurc=0.12))
    valid_png(plot_risk_coverage(risk_coverage([0.9], [True]), tmp_path / "one.png",
                                 title="one item"))


# ----------------------------------------------------------------------------- item scores
def test_box_f1_by_hand():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    gt_cls = np.array([0, 0])
    # one hit (IoU 1), one miss, one false positive: F1 = 2 * 1 / (2 + 2)
    boxes = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], float)
    assert box_f1(gt, gt_cls, boxes, np.array([0, 0]), np.array([0.9, 0.8])) == 0.5
    # the right place with the wrong class does not match
    assert box_f1(gt, gt_cls, boxes[:1], np.array([1]), np.array([0.9])) == 0.0
    # two detections on one cell: the second is a false positive
    twice = np.array([[0, 0, 10, 10], [0, 0, 10, 9]], float)
    assert box_f1(gt[:1], gt_cls[:1], twice, np.array([0, 0]), np.array([0.9, 0.8])) == \
        pytest.approx(2 / 3)
    empty = np.zeros((0, 4))
    assert box_f1(empty, np.zeros(0, int), empty, np.zeros(0, int), np.zeros(0)) == 1.0
    assert box_f1(gt, gt_cls, empty, np.zeros(0, int), np.zeros(0)) == 0.0


def test_item_scores_per_task():
    det = {"classes": [["a"]], "boxes": [torch.tensor([[0.0, 0, 10, 10]])],
           "box_classes": [torch.tensor([0])]}
    pred = {"boxes": torch.tensor([[0.0, 0, 10, 10], [30, 30, 40, 40]]),
            "scores": torch.tensor([0.9, 0.2]), "classes": torch.tensor([0, 0])}
    assert item_score("detect", det, 0, pred) == 1.0  # the 0.2 box is below 0.5
    assert item_score("detect", det, 0, pred, {"count_threshold": 0.1}) == pytest.approx(2 / 3)

    seg = {"classes": [["background", "nucleus", "cytoplasm"]],
           "masks": torch.tensor([[[0, 1, 1, -1], [2, 2, 0, -1]]])}
    # nucleus: gt 2, pred 1, both 1 -> 2/3; cytoplasm: gt 2, pred 3, both 2 -> 4/5
    p = {"mask": torch.tensor([[0, 1, 2, 2], [2, 2, 0, 0]])}
    assert item_score("segment", seg, 0, p) == pytest.approx((2 / 3 + 4 / 5) / 2)
    bg = {"classes": [["background", "nucleus"]], "masks": torch.zeros(1, 2, 2, dtype=torch.long)}
    assert item_score("segment", bg, 0, {"mask": torch.zeros(2, 2)}) == 1.0

    cls = {"classes": [["neutrophil", "red blood cell"]], "labels": torch.tensor([1])}
    probs = {"probs": torch.tensor([0.3, 0.7])}
    assert item_score("classify", cls, 0, probs) == pytest.approx(0.7)
    assert item_score("classify", cls, 0, probs, {"restrict_to": ["neutrophil"]}) is None

    vqa = {"targets": ["2"]}
    assert item_score("vqa", vqa, 0, {"text": "Two."}) == 1.0
    assert item_score("vqa", vqa, 0, {"text": "three"}) == 0.0
    assert item_score("mlm", {"targets": ["x"]}, 0, {"text": "x"}) is None


def test_gallery_picker_keeps_extremes_disjoint():
    g = GalleryPicker(2)
    for i, s in enumerate([0.5, 0.9, 0.1, 0.9, 0.3, 0.7, 0.1, 0.6, 0.2, 0.8, 0.4]):
        g.add(s, i, {"id": i})
    assert [(s, i) for s, i, _ in g.best()] == [(0.9, 1), (0.9, 3)]  # ties: earlier first
    assert [(s, i) for s, i, _ in g.worst()] == [(0.1, 2), (0.1, 6)]
    assert all(p == {"id": i} for _, i, p in g.best() + g.worst())
    small = GalleryPicker(3)
    for i, s in enumerate([0.2, 0.8, 0.5]):
        small.add(s, i, None)
    assert [i for _, i, _ in small.best()] == [1, 2, 0] and small.worst() == []


# ----------------------------------------------------------------------------- galleries
def _image(seed):
    return torch.from_numpy(np.random.default_rng(seed).uniform(size=(3, 40, 48))).float()


def test_image_uint8():
    img = image_uint8(torch.tensor([[[0.0, 1.0]], [[0.5, 2.0]], [[-1.0, 0.25]]]))
    assert img.dtype == np.uint8 and img.shape == (1, 2, 3)
    assert img[0, 1].tolist() == [255, 255, 64]


def test_galleries_for_every_task(tmp_path):
    names = ["red blood cell", "white blood cell"]
    det_item = {"image": _image(0), "key": "d/test/f1", "classes": names,
                "boxes": torch.tensor([[2.0, 2, 12, 12], [20, 5, 40, 30]]),
                "box_classes": torch.tensor([0, 1])}
    det_pred = {"boxes": torch.tensor([[2.0, 2, 12, 12]]), "scores": torch.tensor([0.8]),
                "classes": torch.tensor([0])}
    valid_png(plot_gallery("detect", [(1.0, det_item, det_pred)], [(0.5, det_item, det_pred)],
                           tmp_path / "det.png", title="m — detect"))

    mask = torch.zeros(40, 48, dtype=torch.long)
    mask[10:20, 10:20] = 1
    mask[0, 0] = -1  # an ignored pixel is drawn as background
    seg_item = {"image": _image(1), "key": "d/test/f2", "classes": ["background", "nucleus"],
                "mask": mask}
    seg_pred = {"mask": torch.zeros(64, 64, dtype=torch.long)}  # padded batch size
    valid_png(plot_gallery("segment", [(0.9, seg_item, seg_pred)], [], tmp_path / "seg.png",
                           title="m — segment"))

    cls_item = {"image": _image(2), "key": "d/test/c1", "classes": names, "label": 1}
    cls_pred = {"probs": torch.tensor([0.6, 0.4]), "label": 0}
    valid_png(plot_gallery("classify", [(0.4, cls_item, cls_pred)] * 3,
                           [(0.1, cls_item, cls_pred)], tmp_path / "cls.png", title="m"),
              min_side=150)

    vqa_item = {"image": _image(3), "key": "d/test/f3", "target": "2",
                "question": "How many white blood cells are in the image, counting all?"}
    valid_png(plot_gallery("vqa", [(1.0, vqa_item, {"text": "2"})],
                           [(0.0, vqa_item, {"text": "3"})], tmp_path / "vqa.png", title="m"),
              min_side=150)
    with pytest.raises(ValueError, match="no gallery for task 'mlm'"):
        plot_gallery("mlm", [], [], tmp_path / "x.png", title="m")
