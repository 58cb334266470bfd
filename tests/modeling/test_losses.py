"""Loss functions: class-balanced box regression."""

from __future__ import annotations

import torch

from unihema.modeling.losses import box_regression_loss, class_balanced_weights


def test_class_balanced_weights_give_each_class_equal_total():
    classes = torch.tensor([0, 0, 0, 0, 1, 2, 2])
    w = class_balanced_weights(classes)
    totals = torch.zeros(3).index_add_(0, classes, w)
    assert torch.allclose(totals, torch.ones(3))
    assert class_balanced_weights(torch.zeros(0, dtype=torch.long)).numel() == 0
    # power 0.5: a class's total grows as the square root of its count; power 0: uniform
    half = torch.zeros(3).index_add_(0, classes, class_balanced_weights(classes, power=0.5))
    assert torch.allclose(half, torch.tensor([2.0, 1.0, 2 ** 0.5]))
    assert torch.equal(class_balanced_weights(classes, power=0.0), torch.ones(7))


def test_weighted_box_loss_lets_a_rare_class_count():
    target = torch.tensor([[0, 0, 10, 10]] * 9 + [[0, 0, 40, 40]], dtype=torch.float32)
    pred = target.clone()
    pred[-1] = torch.tensor([10.0, 10.0, 30.0, 30.0])  # only the one large box is wrong
    plain = box_regression_loss(pred, target)
    balanced = box_regression_loss(pred, target,
                                   class_balanced_weights(torch.tensor([0] * 9 + [1])))
    # uniform: the error is diluted over ten boxes; balanced: it weighs half the loss
    assert torch.isclose(balanced, plain * 5, rtol=1e-5)
    assert box_regression_loss(target, target, torch.ones(10)) < 1e-6
    empty = torch.zeros(0, 4)
    assert box_regression_loss(empty, empty) == 0
