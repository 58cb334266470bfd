"""The patient encoder: shapes, attention that sums to one over a patient's real cells and
ignores padding, the same outputs after save and load, clear errors for bad folders."""

from __future__ import annotations

import json

import pytest
import torch

from unihema.patient.encoder import CONFIG, WEIGHTS, EncoderConfig, PatientEncoder, pad_bags


def _encoder(**kw):
    torch.manual_seed(0)
    return PatientEncoder(EncoderConfig(in_dim=8, hidden=16, attention=8, **kw),
                          ["a", "b", "c"], {"types": ["x"]}).eval()


def test_outputs_have_their_shapes_and_attention_sums_to_one_over_real_cells():
    enc = _encoder(branches=2)
    bags = [torch.randn(5, 8), torch.randn(3, 8)]
    cells, mask = pad_bags(bags)
    with torch.no_grad():
        out = enc(cells, mask)
    assert out.embedding.shape == (2, 8) and out.logits.shape == (2, 3)
    assert out.attention.shape == (2, 2, 5) and out.pooled.shape == (2, 32)
    assert torch.allclose(out.embedding.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(out.attention.sum(-1), torch.ones(2, 2), atol=1e-5)
    assert float(out.attention[1, :, 3:].abs().max()) == 0.0  # padding gets no weight
    assert torch.allclose(out.cell_weights().sum(-1), torch.ones(2), atol=1e-5)


def test_padding_does_not_change_a_patient_and_cell_order_does_not_matter():
    enc = _encoder()
    bag = torch.randn(4, 8)
    alone = enc.encode([bag]).embedding[0]
    padded = enc.encode([bag, torch.randn(9, 8)]).embedding[0]
    shuffled = enc.encode([bag[torch.tensor([2, 0, 3, 1])]]).embedding[0]
    assert torch.allclose(alone, padded, atol=1e-5)
    assert torch.allclose(alone, shuffled, atol=1e-5)


def test_save_and_load_give_the_same_outputs(tmp_path):
    enc = _encoder(embed_dim=6)
    enc.save(tmp_path / "enc")
    back = PatientEncoder.load(tmp_path / "enc")
    x = [torch.randn(7, 8)]
    assert torch.equal(enc.encode(x).logits, back.encode(x).logits)
    assert back.diagnoses == ["a", "b", "c"] and back.meta == {"types": ["x"]}
    assert back.config.embed_dim == 6
    assert not list(tmp_path.glob("enc/.*"))  # no temporary file left behind


def test_bad_folders_and_inputs_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="patient_encoder.json"):
        PatientEncoder.load(tmp_path)
    enc = _encoder()
    enc.save(tmp_path / "e")
    doc = json.loads((tmp_path / "e" / CONFIG).read_text())
    doc["config"]["hidden"] = 12
    (tmp_path / "e" / CONFIG).write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=WEIGHTS):
        PatientEncoder.load(tmp_path / "e")
    doc["config"]["colour"] = 1
    (tmp_path / "e" / CONFIG).write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="unknown encoder setting"):
        PatientEncoder.load(tmp_path / "e")
    with pytest.raises(ValueError, match=r"\[B, N, 8\]"):
        enc(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="no cells"):
        enc(torch.randn(1, 3, 8), torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="cell_keep"):
        EncoderConfig(cell_keep=0)
    with pytest.raises(ValueError, match="two distinct diagnoses"):
        PatientEncoder(EncoderConfig(), ["a"])
