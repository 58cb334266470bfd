"""The trunk's size-split BatchNorm: crops and fields keep their own running statistics."""

from __future__ import annotations

import pytest
import torch

from unihema.modeling.backbone import ResNetTrunk, SizeSplitBatchNorm2d


def _trunk(**kw) -> ResNetTrunk:
    torch.manual_seed(0)
    return ResNetTrunk(depth=18, width=8, norm="split_batch", small_side=128, **kw)


def test_small_and_large_inputs_update_their_own_statistics():
    trunk = _trunk()
    bn = trunk.bn1
    assert isinstance(bn, SizeSplitBatchNorm2d)
    large0, small0 = bn.running_mean.clone(), bn.small_running_mean.clone()
    trunk.train()
    trunk(torch.randn(2, 3, 96, 96) + 3.0)  # a crop batch, shifted
    assert torch.equal(bn.running_mean, large0)  # field statistics untouched
    assert not torch.equal(bn.small_running_mean, small0)
    assert int(bn.small_num_batches_tracked) == 1 and int(bn.num_batches_tracked) == 0
    small1 = bn.small_running_mean.clone()
    trunk(torch.randn(2, 3, 160, 160))  # a field batch
    assert torch.equal(bn.small_running_mean, small1)
    assert not torch.equal(bn.running_mean, large0)


def test_evaluation_normalises_each_kind_with_its_own_statistics():
    trunk = _trunk()
    trunk.train()
    for _ in range(30):  # crops bright, fields dark: one shared set would fit neither
        trunk(torch.rand(4, 3, 96, 96) + 2.0)
        trunk(torch.rand(4, 3, 192, 192) - 2.0)
    trunk.eval()
    with torch.no_grad():
        bn = trunk.bn1
        crop = trunk.conv1(torch.rand(4, 3, 96, 96) + 2.0)
        field = trunk.conv1(torch.rand(4, 3, 192, 192) - 2.0)
        bn.small = True
        crop_mean = bn(crop).mean((0, 2, 3)) - bn.bias
        bn.small = False
        field_mean = bn(field).mean((0, 2, 3)) - bn.bias
    # each kind comes out centred by its own statistics
    assert crop_mean.abs().max() < 0.3 and field_mean.abs().max() < 0.3
    assert bn.small_running_mean.sub(bn.running_mean).abs().max() > 1.0


def test_a_crop_padded_beside_a_field_keeps_crop_statistics():
    trunk = _trunk()
    trunk.train()
    for _ in range(20):
        trunk(torch.rand(4, 3, 96, 96) + 2.0)
        trunk(torch.rand(4, 3, 192, 192) - 2.0)
    trunk.eval()
    crop = torch.zeros(1, 3, 192, 192)
    crop[..., :96, :96] = torch.rand(1, 3, 96, 96) + 2.0
    field = torch.rand(1, 3, 192, 192) - 2.0
    with torch.no_grad():
        alone_crop = trunk(crop, small=torch.tensor([True]))
        alone_field = trunk(field, small=torch.tensor([False]))
        mixed = trunk(torch.cat([field, crop]), small=torch.tensor([False, True]))
        by_size = trunk(torch.cat([field, crop]))  # the padded size says: field statistics
    for k in ("C1", "C5"):
        assert torch.allclose(mixed[k][1:], alone_crop[k], atol=1e-5)
        assert torch.allclose(mixed[k][:1], alone_field[k], atol=1e-5)
    assert not torch.allclose(by_size["C1"][1:], alone_crop["C1"], atol=1e-3)


def test_torchvision_weights_load_and_seed_both_statistics(tmp_path):
    from torchvision.models import resnet18

    tv = resnet18()
    with torch.no_grad():
        tv.bn1.running_mean.uniform_(-1, 1)
    torch.save(tv.state_dict(), tmp_path / "r18.pth")
    trunk = ResNetTrunk(depth=18, width=64, norm="split_batch")
    trunk.load_torchvision(tmp_path / "r18.pth")
    assert torch.equal(trunk.bn1.running_mean, tv.bn1.running_mean)
    assert torch.equal(trunk.bn1.small_running_mean, tv.bn1.running_mean)
    assert torch.equal(trunk.layer2[0].downsample[1].small_running_var,
                       tv.layer2[0].downsample[1].running_var)


def test_white_balance_removes_an_instruments_colour_cast():
    """The same smear under two illuminants comes out the same; padding stays zero."""
    from unihema.modeling.backbone import white_balance

    g = torch.Generator().manual_seed(0)
    smear = torch.ones(3, 20, 24)  # white background, a stained cell in the middle
    smear[:, 6:14, 8:16] = torch.tensor([0.45, 0.15, 0.40]).view(3, 1, 1)
    smear = (smear - 0.02 * torch.rand(3, 20, 24, generator=g)).clamp(0, 1)
    yellow = smear * torch.tensor([0.99, 0.96, 0.73]).view(3, 1, 1)
    pink = smear * torch.tensor([0.89, 0.74, 0.70]).view(3, 1, 1)
    images = torch.zeros(2, 3, 32, 32)
    images[0, :, :20, :24], images[1, :, :20, :24] = yellow, pink
    mask = torch.zeros(2, 32, 32, dtype=torch.bool)
    mask[:, :20, :24] = True
    out = white_balance(images, mask)
    assert (yellow - pink).abs().max() > 0.2  # the cast before
    assert (out[0] - out[1]).abs().max() < 1e-5  # and after: gone
    assert out[0, :, 0, 0].min() > 0.97  # background is white
    assert (out[:, :, 20:, :] == 0).all() and (out[:, :, :, 24:] == 0).all()
    assert out[0, :, 10, 12].tolist() == pytest.approx(
        (smear[:, 10, 12] / smear.flatten(1).quantile(0.95, dim=1)).tolist(), abs=1e-5)
