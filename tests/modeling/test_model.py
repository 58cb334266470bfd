"""The unified model with a tiny config: shapes, losses, gradients, checkpoints, open vocabulary."""

from __future__ import annotations

import pytest
import torch

from unihema.config import load_config
from unihema.data.catalog import load_dataset
from unihema.pipeline.collate import collate, slice_batch
from unihema.pipeline.mapper import DatasetMapper, TaskDataset
from unihema.data.sample import TASKS
from unihema.engine.objectives import CrossSupervision, TrunkSupervision
from unihema.modeling.heads import weigh_losses
from unihema.modeling.model import UniHema
from unihema.modeling.types import Fused

CROSS = [CrossSupervision()]

WEIGHTS = {k: 1.0 for k in ("loss_detect_heatmap", "loss_detect_box", "loss_segment_ce",
                             "loss_segment_dice", "loss_classify_ce", "loss_morphology_attr",
                             "loss_morphology_text", "loss_mlm_ce", "loss_vqa_ce")}


@pytest.fixture(scope="module")
def cfg(tiny):
    return load_config(None, tiny)


@pytest.fixture(scope="module")
def model(cfg):
    torch.manual_seed(0)
    return UniHema.from_config(cfg)


@pytest.fixture(scope="module")
def batches(cfg, synth_root):
    samples = load_dataset("synthetic_smear", synth_root, "train")
    mapper = DatasetMapper.from_config(cfg, train=True)
    out = {}
    for task in TASKS:
        ds = TaskDataset([s for s in samples if task in s.tasks()], task, mapper, train=True)
        out[task] = collate([ds[i] for i in range(3)])
    return out


@pytest.mark.parametrize("task", TASKS)
def test_losses_are_finite_and_named(model, batches, task):
    losses = model(batches[task])
    assert losses and all(k.startswith(f"loss_{task}_") for k in losses)
    assert all(torch.isfinite(v) and v.ndim == 0 for v in losses.values())


def test_prediction_shapes(model, batches):
    b = batches["detect"]
    for p in model.predict(b):
        n = p["boxes"].shape[0]
        assert p["boxes"].shape == (n, 4) and p["scores"].shape == (n,)
        assert p["classes"].shape == (n,) and (p["scores"] >= 0).all()
    b = batches["segment"]
    for p, m in zip(model.predict(b), b["masks"]):
        assert p["mask"].shape == m.shape and p["mask"].max() < len(b["classes"][0])
    for p, cl in zip(model.predict(batches["classify"]), batches["classify"]["classes"]):
        assert p["probs"].shape == (len(cl),)
        assert torch.isclose(p["probs"].sum(), torch.tensor(1.0), atol=1e-5)
    p = model.predict(batches["morphology"])[0]
    assert set(p["attributes"]) >= {"nucleus_shape", "granularity"} and isinstance(p["text"], str)
    for task in ("vqa", "mlm"):
        assert all(isinstance(p["text"], str) for p in model.predict(batches[task]))


def test_classify_embeddings_live_in_the_class_name_space(model, batches):
    b = batches["classify"]
    preds = model.predict(b)
    head = model.head("classify")
    for p, cl in zip(preds, b["classes"]):
        e = p["embedding"]
        assert e.shape == (model.config.heads.embed_dim,)
        assert torch.isclose(e.norm(), torch.tensor(1.0), atol=1e-5)
        with torch.no_grad():
            c = head.class_embeddings(model.text, cl)
        # the logits are the cosine to each candidate's name embedding times the learned scale
        expected = (c @ e) * head.log_scale.exp()
        assert torch.allclose(p["logits"], expected, atol=1e-4)


def test_empty_targets(model, batches, synth_root):
    b = dict(batches["detect"])
    b["boxes"] = [torch.zeros((0, 4)) for _ in b["boxes"]]
    b["box_classes"] = [torch.zeros((0,), dtype=torch.long) for _ in b["box_classes"]]
    losses = model(b)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_detect_box"].detach().item() == 0.0


def test_gradient_reaches_every_trainable_parameter(cfg, batches):
    torch.manual_seed(1)
    m = UniHema.from_config(cfg)
    m.zero_grad()
    total = 0.0
    for task in TASKS:
        total = total + sum(weigh_losses(m(batches[task]), WEIGHTS).values())
    total.backward()
    dead = [n for n, p in m.named_parameters() if p.requires_grad and
            (p.grad is None or not torch.any(p.grad != 0))]
    assert not dead, dead


@pytest.mark.parametrize("task", ["classify", "morphology", "vqa", "mlm"])
def test_heads_without_maps_skip_them_with_the_same_losses(model, batches, task, monkeypatch):
    """Cell and text heads read the joint embedding and the decoder memory, not the stride-4
    map or the top-down pass: their batches skip both, and the losses equal those computed
    with the whole pyramid."""
    head = model.heads[task]
    assert head.dense is False and model.heads["detect"].dense is True
    b = batches[task]
    visual = model.encode_image(b["images"], b["pixel_mask"], dense=False)
    assert "P2" not in visual and "C1" not in visual and "P3" in visual
    model.train()
    torch.manual_seed(0)
    lean = model(b)
    monkeypatch.setattr(head, "dense", True)
    torch.manual_seed(0)
    full = model(b)
    assert lean.keys() == full.keys()
    for k in lean:
        torch.testing.assert_close(lean[k], full[k], rtol=1e-5, atol=1e-6)


def test_save_load_round_trip_is_identical(model, batches, tmp_path):
    model.eval()
    path = model.save_pretrained(tmp_path / "ckpt", extra={"note": "test"})
    assert {"config.json", "model.safetensors"} <= {p.name for p in path.iterdir()}
    again = UniHema.from_pretrained(path).eval()
    assert again.checkpoint_meta["note"] == "test"
    for task in ("detect", "classify", "vqa"):
        a, b = model.predict(batches[task]), again.predict(batches[task])
        for x, y in zip(a, b):
            for k in x:
                if torch.is_tensor(x[k]):
                    assert torch.equal(x[k], y[k]), (task, k)
                else:
                    assert x[k] == y[k], (task, k)
    # a save over an existing checkpoint replaces it atomically and leaves no temp folders
    model.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a unihema checkpoint"):
        UniHema.from_pretrained(tmp_path)


def test_local_resnet_state_dict_loads(tiny, tmp_path):
    from torchvision.models import resnet18

    tv = resnet18()
    torch.save(tv.state_dict(), tmp_path / "r18.pth")
    mcfg = load_config(None, tiny + ["model.backbone.width=64", "model.backbone.norm=batch",
                                     f"model.backbone.pretrained={tmp_path / 'r18.pth'}"]).model
    m = UniHema.from_config(mcfg)
    assert torch.equal(m.trunk.layer3[0].conv1.weight, tv.layer3[0].conv1.weight)
    bad = load_config(None, tiny + [f"model.backbone.pretrained={tmp_path / 'r18.pth'}"]).model
    with pytest.raises(ValueError, match="not a matching torchvision ResNet"):
        UniHema.from_config(bad)  # width 8 does not match a standard ResNet-18


def test_local_t5_directory_loads(tiny, tmp_path):
    from transformers import T5Config, T5ForConditionalGeneration

    from unihema.modeling.text import load_tokenizer

    tok = load_tokenizer()
    t5 = T5ForConditionalGeneration(T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64,
                                             num_layers=1, num_decoder_layers=1, num_heads=2,
                                             pad_token_id=0, eos_token_id=1,
                                             decoder_start_token_id=0))
    t5.save_pretrained(tmp_path / "t5")
    mcfg = load_config(None, tiny + [f"model.text.pretrained={tmp_path / 't5'}"]).model
    m = UniHema.from_config(mcfg)
    assert torch.equal(m.text.t5.shared.weight, t5.shared.weight)
    m.save_pretrained(tmp_path / "ckpt")
    again = UniHema.from_pretrained(tmp_path / "ckpt")
    assert torch.equal(again.text.t5.shared.weight, t5.shared.weight)


def test_open_vocabulary_class_never_seen(model, batches):
    b = dict(batches["detect"])
    b["classes"] = [list(c) + ["giant platelet"] for c in b["classes"]]
    preds = model.predict(b)
    k = len(b["classes"][0])
    assert all(p["classes"].numel() == 0 or int(p["classes"].max()) < k for p in preds)
    seg = dict(batches["segment"])
    seg["classes"] = [["background", "hairy cell"] + list(c[1:]) for c in seg["classes"]]
    assert model.predict(seg)[0]["mask"].max() < len(seg["classes"][0])


def test_each_item_gets_the_normalisation_of_its_real_size(model, monkeypatch):
    """A crop padded beside a field (an evaluation batch) still counts as a crop."""
    seen = []
    forward = model.trunk.forward
    monkeypatch.setattr(model.trunk, "forward",
                        lambda x, small=None: seen.append(small.tolist()) or forward(x, small))
    mask = torch.zeros(2, 192, 192, dtype=torch.bool)
    mask[0] = True
    mask[1, :96, :80] = True
    model.encode_image(torch.rand(2, 3, 192, 192), mask)
    assert seen == [[False, True]]


def _cross_batch(synth_root, task, n=4):
    """A training batch of ``task`` whose items also carry the other cell task's targets
    (morphology: ``n`` white cells; classify: ``n / 2`` white and ``n / 2`` red cells), and the
    red-cell samples."""
    samples = load_dataset("synthetic_smear", synth_root, "train")
    mapper = DatasetMapper(image_size=256, augment=None, train=True,
                           cross={"morphology": ["classify"], "classify": ["morphology"]})
    white = [s for s in samples if s.attributes and task in s.tasks()]
    red = [s for s in samples if task in s.tasks() and not s.attributes]
    items = white[:n] if task == "morphology" else white[:n // 2] + red[:n // 2]
    ds = TaskDataset(items, task, mapper, train=True)
    return collate([ds[i] for i in range(len(items))]), red


def test_cross_supervision_trains_the_other_cell_head(model, synth_root):
    """A morphology batch carrying types returns the classify head's loss computed from the
    same fused representation (items without a type skipped); a classify batch carrying
    attributes returns the attribute term only; the gradients reach the other head."""
    b, _ = _cross_batch(synth_root, "morphology")
    model.train()
    for m in model.modules():  # deterministic: no dropout (BatchNorm uses the batch)
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    assert set(model(b)) == {"loss_morphology_attr", "loss_morphology_text"}  # no objective
    losses = model(b, objectives=CROSS)
    assert set(losses) == {"loss_morphology_attr", "loss_morphology_text", "loss_classify_ce"}
    fused = model.encode(b["images"], b["pixel_mask"], list(b["prompts"]), dense=False)
    head = model.heads["classify"]
    expect = head.loss(head(fused, b), b)["loss_classify_ce"]
    torch.testing.assert_close(losses["loss_classify_ce"], expect)
    b["labels"] = b["labels"].clone()
    b["labels"][0] = -1  # an untyped crop is skipped, not scored
    keep = {"classes": b["classes"][1:], "labels": b["labels"][1:]}
    expect = head.loss(head(fused.select([1, 2, 3]), keep), keep)["loss_classify_ce"]
    torch.testing.assert_close(model(b, objectives=CROSS)["loss_classify_ce"], expect)

    typed, red = _cross_batch(synth_root, "classify")
    model.train()
    model.zero_grad()
    losses = model(typed, objectives=CROSS)
    assert set(losses) == {"loss_classify_ce", "loss_morphology_attr"}
    losses["loss_morphology_attr"].backward()
    assert model.heads["morphology"].hidden[0].weight.grad.abs().sum() > 0
    assert model.heads["morphology"].out["nucleus_shape"].weight.grad.abs().sum() > 0
    model.zero_grad()
    # red cells state no attributes: no attribute term at all
    mapper = DatasetMapper(image_size=256, augment=None, train=True,
                           cross={"classify": ["morphology"]})
    ds = TaskDataset(red[:3], "classify", mapper, train=True)
    assert set(model(collate([ds[i] for i in range(3)]), objectives=CROSS)) == {
        "loss_classify_ce"}


def test_cross_supervision_without_the_head_is_a_clear_error(tiny, synth_root):
    b, _ = _cross_batch(synth_root, "morphology", n=2)
    torch.manual_seed(0)
    only = load_config(None, tiny + ["model.tasks=[morphology]"])
    m = UniHema.from_config(only)
    with pytest.raises(KeyError, match="carries 'classify' targets.*no 'classify' head"):
        m(b, objectives=CROSS)


def test_trunk_items_are_scored_from_the_trunk_alone(model, synth_root):
    """``trunk_items = k``: the full path's losses are those of the batch without its last
    ``k`` items, and ``loss_<task>_trunk_<term>`` are the heads' cross losses on
    ``trunk_pool`` of those items' pooled C5 alone; that gradient reaches the trunk and the
    head, not the fusion."""
    full, _ = _cross_batch(synth_root, "morphology", n=6)
    main, tail = slice_batch(full, 0, 4), slice_batch(full, 4, 6)
    model.train()
    for m in model.modules():  # deterministic: no dropout (the tiny trunk uses GroupNorm)
        if isinstance(m, torch.nn.Dropout):
            m.eval()
    trunk = [CrossSupervision(), TrunkSupervision({"morphology": 2})]
    losses = model(full, objectives=trunk)
    plain = model(main, objectives=CROSS)
    assert set(losses) == set(plain) | {"loss_morphology_trunk_attr", "loss_classify_trunk_ce"}
    for name, value in plain.items():
        torch.testing.assert_close(losses[name], value)
    pooled = model.encode_image(tail["images"], tail["pixel_mask"], dense=False)["pooled"]
    view = Fused(joint=model.trunk_pool(pooled), text_model=model.text)
    torch.testing.assert_close(losses["loss_classify_trunk_ce"],
                               model.heads["classify"].cross_loss(view, tail)["loss_classify_ce"])
    torch.testing.assert_close(
        losses["loss_morphology_trunk_attr"],
        model.heads["morphology"].cross_loss(view, tail)["loss_morphology_attr"])
    model.zero_grad()
    losses["loss_classify_trunk_ce"].backward()
    assert model.trunk.conv1.weight.grad.abs().sum() > 0
    assert model.heads["classify"].image_proj[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.fusion.parameters())
    model.zero_grad()
    with pytest.raises(ValueError, match="trunk_items = 6 leaves no item of a batch of 6"):
        model(full, objectives=[TrunkSupervision({"morphology": 6})])


def test_checkpoints_with_0_dim_scalars_still_load(tiny, tmp_path):
    """One-value parameters are [1] (DeepSpeed ZeRO-3 cannot partition 0-dim ones); a folder
    written when they were 0-dim loads into the same values."""
    from safetensors.torch import load_file, save_file

    from unihema.config import load_config
    from unihema.modeling.model import UniHema

    torch.manual_seed(0)
    model = UniHema.from_config(load_config(None, tiny))
    assert all(p.dim() > 0 for p in model.parameters())
    with torch.no_grad():
        model.heads["classify"].log_scale.fill_(1.5)
    model.save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    old = {k: (v.reshape(()) if v.shape == (1,) else v) for k, v in load_file(weights).items()}
    assert old["heads.classify.log_scale"].dim() == 0
    save_file(old, str(weights), metadata={"format": "pt"})
    loaded = UniHema.from_pretrained(tmp_path / "m")
    assert loaded.heads["classify"].log_scale.shape == (1,)
    assert loaded.heads["classify"].log_scale.item() == pytest.approx(1.5)
