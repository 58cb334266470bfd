"""TrustState: per-cell verdicts, and its files beside a model."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from unihema.trust.state import TRUST_JSON, TRUST_TENSORS, CellTrust, TrustState
from unihema.trust.unknown import FitData, build_scorer

CLASSES = ["neutrophil", "lymphocyte", "monocyte"]


def _state(method: str = "knn", **over) -> TrustState:
    g = torch.Generator().manual_seed(0)
    centres = F.normalize(torch.randn(3, 8, generator=g), dim=-1)
    labels = torch.arange(3).repeat(20)
    emb = F.normalize(centres[labels] + 0.05 * torch.randn(60, 8, generator=g), dim=-1)
    scorer = build_scorer(method)
    tensors = {f"{method}.{k}": v for k, v in scorer.fit(FitData(emb, labels, CLASSES)).items()}
    tensors.update(class_embeddings=centres, logit_scale=torch.tensor([10.0]))
    kw = dict(classes=list(CLASSES), temperature=1.5, conformal={"0.90": 0.95, "0.95": 0.99},
              unknown_method=method, unknown_threshold=0.1, referral_threshold=0.8,
              unknown_params=scorer.params(), fitted_on={"split": "val", "items": 60},
              scorers={method: scorer.params()}, thresholds={method: 0.1}, conformal_u=1.0,
              tensors=tensors)
    kw.update(over)
    return TrustState(**kw)


def test_assess_gives_one_consistent_verdict_per_cell():
    state = _state()
    centres = state.tensors["class_embeddings"]
    far = F.normalize(torch.ones(1, 8) - 3 * centres.sum(0, keepdim=True), dim=-1)
    emb = torch.cat([centres, far])
    logits = torch.tensor([[9.0, 0.0, 0.0], [0.0, 9.0, 0.0], [3.0, 2.9, 0.0], [1.0, 1.0, 1.0]])
    cells = state.assess(logits, emb)
    assert len(cells) == 4 and all(isinstance(c, CellTrust) for c in cells)
    for c, row in zip(cells, logits):
        assert math.isclose(sum(c.probs.values()), 1.0, rel_tol=1e-5)
        assert c.label == CLASSES[int(row.argmax())] == c.prediction_set[0]
        assert c.unknown == (c.unknown_score > state.unknown_threshold)
        assert c.refer == (c.unknown or c.confidence < state.referral_threshold)
        assert (c.reason == "") == (not c.refer)
    assert not cells[0].refer and cells[0].prediction_set == ["neutrophil"]
    # two close logits: a two-type set, referred as ambiguous
    assert cells[2].prediction_set == ["neutrophil", "lymphocyte"]
    assert cells[2].refer and cells[2].reason.startswith("ambiguous: 2 types")
    # far from every training embedding: flagged unknown, with the numbers in the reason
    assert cells[3].unknown and cells[3].reason.startswith("unknown type (score ")
    assert json.loads(json.dumps(cells[3].to_dict()))["confidence"] == cells[3].confidence


def test_probabilities_use_the_fitted_temperature():
    state = _state(temperature=2.0)
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    probs = state.assess(logits, state.tensors["class_embeddings"][:1])[0].probs
    expected = (logits / 2.0).softmax(-1)[0]
    assert probs["neutrophil"] == pytest.approx(float(expected[0]))


def test_logits_can_come_from_embeddings_and_be_aligned():
    state = _state()
    emb = state.tensors["class_embeddings"]
    direct = state.assess(None, emb)
    assert [c.label for c in direct] == CLASSES
    shuffled = torch.tensor([[1.0, 2.0, 3.0, 4.0]])  # over another order, with an extra class
    aligned = state.align(shuffled, ["monocyte", "eosinophil", "neutrophil", "lymphocyte"])
    assert aligned.tolist() == [[3.0, 4.0, 1.0]]
    with pytest.raises(ValueError, match="no column for \\['monocyte'\\]"):
        state.align(shuffled[:, :2], ["neutrophil", "lymphocyte"])
    with pytest.raises(ValueError, match="logits must be \\[N, 3\\]"):
        state.assess(torch.zeros(2, 4), emb[:2])


def test_prediction_sets_at_each_fitted_level():
    state = _state()
    probs = torch.tensor([[0.5, 0.3, 0.2]])
    assert state.prediction_sets(probs) == [["neutrophil", "lymphocyte"]]
    assert state.prediction_sets(probs, "0.95") == [["neutrophil", "lymphocyte"]]
    assert _state(conformal={"0.90": 1.0}).prediction_sets(probs) == [
        ["neutrophil", "lymphocyte", "monocyte"]]
    assert state.prediction_sets(probs, level=0.9) == state.prediction_sets(probs)
    assert _state(conformal={"0.90": 0.5, "0.95": 0.8}).prediction_sets(probs) == [
        ["neutrophil"]]
    with pytest.raises(KeyError, match="fitted: \\['0.90', '0.95'\\]"):
        state.prediction_sets(probs, level="0.80")


def test_save_and_load_round_trip(tmp_path):
    state = _state("mahalanobis")
    state.save(tmp_path)
    assert (tmp_path / TRUST_JSON).is_file() and (tmp_path / TRUST_TENSORS).is_file()
    back = TrustState.load(tmp_path)
    assert back is not None
    for name in ("classes", "temperature", "conformal", "unknown_method", "unknown_threshold",
                 "referral_threshold", "level", "target_accuracy", "unknown_params",
                 "fitted_on", "scorers", "thresholds", "conformal_u"):
        assert getattr(back, name) == getattr(state, name), name
    assert set(back.tensors) == set(state.tensors)
    for k, v in state.tensors.items():
        assert torch.equal(back.tensors[k], v), k
    emb = state.tensors["class_embeddings"]
    assert [c.to_dict() for c in back.assess(None, emb)] == [
        c.to_dict() for c in state.assess(None, emb)]
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_infinite_threshold_survives_json(tmp_path):
    _state(unknown_threshold=math.inf).save(tmp_path)
    assert TrustState.load(tmp_path).unknown_threshold == math.inf


def test_load_is_none_without_trust_json(tmp_path):
    assert TrustState.load(tmp_path) is None


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("temperature"), "missing field 'temperature'"),
    (lambda m: m.update(temperature=-1), "field 'temperature' must be a positive number"),
    (lambda m: m.update(classes=[]), "field 'classes' must be a non-empty list"),
    (lambda m: m.update(level="0.80"), "field 'level' is '0.80'"),
    (lambda m: m.update(format=99), "field 'format' is 99"),
    (lambda m: m.update(unknown_method="nope"), "unknown-cell scorer 'nope'"),
])
def test_malformed_trust_json_names_the_field(tmp_path, change, message):
    _state().save(tmp_path)
    meta = json.loads((tmp_path / TRUST_JSON).read_text())
    change(meta)
    (tmp_path / TRUST_JSON).write_text(json.dumps(meta))
    with pytest.raises((ValueError, KeyError), match=message):
        TrustState.load(tmp_path)


def test_mismatched_or_missing_tensor_file_is_an_error(tmp_path):
    _state().save(tmp_path)
    other = tmp_path / "other"
    _state(tensors={"x": torch.zeros(2)}).save(other)
    (tmp_path / TRUST_TENSORS).write_bytes((other / TRUST_TENSORS).read_bytes())
    with pytest.raises(ValueError, match="not written together"):
        TrustState.load(tmp_path)
    (tmp_path / TRUST_TENSORS).unlink()
    with pytest.raises(ValueError, match="'tensor_file' names trust.safetensors"):
        TrustState.load(tmp_path)
    (tmp_path / TRUST_JSON).write_text("{not json")
    with pytest.raises(ValueError, match="trust.json: not valid JSON"):
        TrustState.load(tmp_path)
