"""collate: padding of images and masks, list keys, single-task batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from unihema.config.schema import AugmentConfig
from unihema.pipeline.collate import IGNORE_INDEX, collate, slice_batch
from unihema.pipeline.mapper import DatasetMapper, TaskDataset
from unihema.data.sample import UnifiedSample


def _item(task: str, h: int, w: int, key: str = "k", **extra):
    item = {"task": task, "key": key, "image": torch.rand(3, h, w), "orig_size": (h, w),
            "scale": 1.0, "prompt": f"{task}: x"}
    item.update(extra)
    return item


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.tuples(st.integers(1, 70), st.integers(1, 70)), min_size=1, max_size=4),
       multiple=st.sampled_from([1, 8, 32]))
def test_pads_images_and_masks(sizes, multiple):
    batch = []
    for i, (h, w) in enumerate(sizes):
        mask = torch.randint(0, 3, (h, w))
        batch.append(_item("segment", h, w, key=f"s{i}", mask=mask, classes=["background"]))
    out = collate(batch, pad_to_multiple=multiple)
    b = len(sizes)
    H, W = out["images"].shape[-2:]
    assert out["images"].shape == (b, 3, H, W) and out["images"].dtype == torch.float32
    assert H % multiple == 0 and W % multiple == 0
    assert H - multiple < max(h for h, _ in sizes) <= H
    assert W - multiple < max(w for _, w in sizes) <= W
    assert out["pixel_mask"].dtype == torch.bool and out["masks"].dtype == torch.int64
    for i, (item, (h, w)) in enumerate(zip(batch, sizes)):
        assert torch.equal(out["images"][i, :, :h, :w], item["image"])
        assert out["images"][i].sum() == pytest.approx(item["image"].sum().item(), rel=1e-5)
        assert out["pixel_mask"][i].sum() == h * w and out["pixel_mask"][i, :h, :w].all()
        assert torch.equal(out["masks"][i, :h, :w], item["mask"])
        assert (out["masks"][i][~out["pixel_mask"][i]] == IGNORE_INDEX).all()
    assert out["keys"] == [f"s{i}" for i in range(b)] and out["task"] == "segment"


def test_list_keys_and_labels():
    batch = [
        _item("classify", 10, 12, classes=["a", "b"], label=1),
        _item("classify", 8, 20, classes=["a", "b"], label=0),
    ]
    out = collate(batch)
    assert out["images"].shape == (2, 3, 32, 32)
    assert out["labels"].dtype == torch.int64 and out["labels"].tolist() == [1, 0]
    assert out["classes"] == [["a", "b"], ["a", "b"]] and out["prompts"] == ["classify: x"] * 2
    assert out["orig_sizes"] == [(10, 12), (8, 20)] and out["scales"] == [1.0, 1.0]
    assert "masks" not in out
    vqa = collate([_item("vqa", 5, 5, question="q?", target="2", qtype="count")])
    assert vqa["questions"] == ["q?"] and vqa["targets"] == ["2"] and vqa["qtypes"] == ["count"]


def test_slice_batch_takes_items_of_every_key():
    batch = collate([_item("classify", 10, 12, key=f"c{i}", classes=["a", "b"], label=i % 2)
                     for i in range(5)])
    batch["trunk_items"] = 2  # a scalar setting is kept as it is
    part = slice_batch(batch, 3, 5)
    assert part["keys"] == ["c3", "c4"] and part["labels"].tolist() == [1, 0]
    assert torch.equal(part["images"], batch["images"][3:5])
    assert torch.equal(part["pixel_mask"], batch["pixel_mask"][3:5])
    assert part["classes"] == [["a", "b"]] * 2 and part["prompts"] == ["classify: x"] * 2
    assert part["task"] == "classify" and part["trunk_items"] == 2
    with pytest.raises(ValueError, match=r"items 3:6 of a batch of 5"):
        slice_batch(batch, 3, 6)
    with pytest.raises(ValueError, match=r"items 2:2"):
        slice_batch(batch, 2, 2)
    batch["keys"] = batch["keys"][:4]
    with pytest.raises(ValueError, match="'keys' has 4 values for 5 items"):
        slice_batch(batch, 0, 2)


def test_refuses_mixed_tasks_and_empty():
    with pytest.raises(ValueError, match=r"one task.*\['classify', 'detect'\]"):
        collate([_item("detect", 4, 4, key="a"), _item("classify", 4, 4, key="b")])
    with pytest.raises(ValueError, match="empty"):
        collate([])
    with pytest.raises(ValueError, match="same keys"):
        collate([_item("vqa", 4, 4, question="q"), _item("vqa", 4, 4)])


def test_detect_batch_from_dataloader(tmp_path):
    samples = []
    for i, (w, h) in enumerate([(80, 60), (50, 90), (64, 64)]):
        Image.fromarray(np.full((h, w, 3), 100 + i, np.uint8)).save(tmp_path / f"{i}.png")
        n = i + 1
        boxes = np.array([[2 + 5 * j, 3, 12 + 5 * j, 20] for j in range(n)], np.float32)
        samples.append(UnifiedSample(
            dataset="toy", split="train", sample_id=str(i), image_path=str(tmp_path / f"{i}.png"),
            width=w, height=h, boxes=boxes, box_labels=["platelet"] * n).check())
    mapper = DatasetMapper(image_size=48, augment=AugmentConfig(), train=True)
    ds = TaskDataset(samples, "detect", mapper, train=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate)
    batch = next(iter(loader))
    assert batch["task"] == "detect" and batch["images"].shape[:2] == (3, 3)
    assert max(batch["images"].shape[-2:]) <= 64 and batch["images"].shape[-1] % 32 == 0
    assert len(batch["boxes"]) == 3 and all(b.shape[1] == 4 for b in batch["boxes"])
    assert [len(c) for c in batch["box_classes"]] == [len(b) for b in batch["boxes"]]
    assert batch["classes"] == [["platelet"]] * 3
