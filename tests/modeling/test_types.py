"""The typed contracts of a forward pass: Batch, Fused (with its Decoder) and HeadOutput."""

from __future__ import annotations

import pytest
import torch

from unihema.config import load_config
from unihema.modeling.model import UniHema
from unihema.modeling.types import Batch, Fused, HeadOutput


def _dict(n: int = 3):
    return {"task": "classify", "images": torch.rand(n, 3, 64, 64),
            "pixel_mask": torch.ones(n, 64, 64, dtype=torch.bool),
            "prompts": [f"p{i}" for i in range(n)], "keys": [f"k{i}" for i in range(n)],
            "labels": torch.arange(n), "classes": [["a", "b", "c"]] * n, "scales": [1.0] * n}


@pytest.fixture(scope="module")
def model(tiny):
    torch.manual_seed(0)
    return UniHema.from_config(load_config(None, tiny))


def test_batch_reads_as_the_collated_dict():
    d = _dict()
    b = Batch.from_dict(d)
    assert Batch.from_dict(b) is b
    assert (b.task, b.size, b.item_keys) == ("classify", 3, ["k0", "k1", "k2"])
    assert b.fields.keys() == {"labels", "classes", "scales"}
    assert set(b) == set(d) and dict(b).keys() == d.keys()
    assert b["keys"] == d["keys"] and b["images"] is d["images"] and b["labels"] is d["labels"]
    assert "labels" in b and "masks" not in b and b.get("masks") is None
    assert dict(**b)["prompts"] == d["prompts"]
    with pytest.raises(KeyError, match="the classify batch has no 'masks'"):
        b["masks"]
    with pytest.raises(KeyError, match=r"a batch needs \['pixel_mask', 'prompts'\]"):
        Batch.from_dict({"task": "x", "images": d["images"]})


def test_batch_slice_and_replace():
    b = Batch.from_dict(_dict(4))
    part = b.slice(1, 3)
    assert part.size == 2 and part.item_keys == ["k1", "k2"] and part["labels"].tolist() == [1, 2]
    assert part.prompts == ["p1", "p2"] and part["classes"] == [["a", "b", "c"]] * 2
    with pytest.raises(ValueError, match="cannot take items 3:6 of a batch of 4"):
        b.slice(3, 6)
    other = b.replace(prompts=["q"] * 4, labels=torch.zeros(4), keys=["x"] * 4)
    assert other.prompts == ["q"] * 4 and other["labels"].sum() == 0 and other["keys"][0] == "x"
    assert b.prompts[0] == "p0" and b["labels"].sum() == 6  # the original is unchanged


def test_fused_carries_the_decoder_bound_to_its_memory(model):
    b = _dict(2)
    fused = model.encode(b["images"], b["pixel_mask"], b["prompts"], dense=True)
    assert isinstance(fused, Fused)
    d = model.config.d_model
    assert fused.joint.shape == (2, d) and fused.queries.shape[0] == 2
    assert {"P2", "P3", "P4", "P5", "C1"} <= set(fused.maps)
    dec = fused.decoder
    assert dec.memory.shape[:2] == dec.mask.shape == dec.ids.shape
    model.train()
    expect = model.text.decoder_loss(dec.memory, dec.mask, ["a b", "c"], dec.ids, dec.offsets)
    torch.testing.assert_close(dec.loss(["a b", "c"]), expect)
    assert len(dec.generate()) == 2
    # the mapping view of the former dict
    assert fused["joint"] is fused.joint and fused["P2"] is fused.maps["P2"]
    assert fused["memory"] is dec.memory and fused["memory_mask"] is dec.mask
    assert fused["embed_phrases"](["platelet"]).shape == (1, model.text.d_model)
    assert "memory_offsets" in fused and "nothing" not in fused
    lean = model.encode(b["images"], b["pixel_mask"], b["prompts"], dense=False)
    assert "P2" not in lean.maps and "C1" not in lean.maps
    torch.testing.assert_close(lean.joint, fused.joint)
    one = fused.take([1])
    assert one.maps["P2"].shape[0] == one.decoder.memory.shape[0] == one.queries.shape[0] == 1
    torch.testing.assert_close(one.decoder.ids, dec.ids[1:])
    view = fused.select([1])
    assert view.joint.shape == (1, d) and view.decoder is None and view.text_model is model.text


def test_head_output_reads_under_the_pred_names():
    out = HeadOutput(logits=torch.zeros(2, 3), class_names=["a", "b", "c"])
    assert set(out) == {"pred_logits", "class_names"}
    assert out["pred_logits"] is out.logits and out["class_names"] == ["a", "b", "c"]
    assert "pred_text" not in out and out.get("pred_text", 5) == 5
    with pytest.raises(KeyError, match="no 'pred_ltrb'"):
        out["pred_ltrb"]


def test_forward_and_predict_take_a_dict_or_a_batch(model):
    b = _dict(2)
    model.train()
    torch.manual_seed(0)
    from_dict = model(b)
    torch.manual_seed(0)
    from_batch = model(Batch.from_dict(b))
    assert from_dict.keys() == from_batch.keys() == {"loss_classify_ce"}
    torch.testing.assert_close(from_dict["loss_classify_ce"], from_batch["loss_classify_ce"])
    assert [p["label"] for p in model.predict(b)] == [p["label"] for p in
                                                      model.predict(Batch.from_dict(b))]
    with pytest.raises(KeyError, match="this model has no 'count' head"):
        model(dict(b, task="count"))
