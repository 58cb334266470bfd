"""The open-set and selective-prediction evaluators on hand-made predictions, and their suite
entries."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch
import yaml

from unihema.config.loader import ConfigError
from unihema.evaluation.suite import load_suite
from unihema.evaluation.trust import (OpenSetEvaluator, SelectiveEvaluator, open_set_samples,
                                      oracle_coverage)
from unihema.trust.state import TrustState

KNOWN = ["lymphocyte", "monocyte", "segmented neutrophil"]


def _state(**over):
    kw = dict(classes=list(KNOWN), temperature=1.0, conformal={"0.90": 0.9, "0.95": 0.97},
              unknown_method="msp", unknown_threshold=-0.6, referral_threshold=0.8,
              target_accuracy=0.98)
    kw.update(over)
    return TrustState(**kw)


def _sample(key, label):
    return types.SimpleNamespace(key=key, label=label, label_set=list(KNOWN), meta={})


def _dataset(samples):
    return types.SimpleNamespace(samples=samples)


def _batch(keys, logits, labels=None):
    return {"keys": keys, "classes": [list(KNOWN)] * len(keys),
            "labels": torch.tensor(labels or [0] * len(keys))}


def _preds(logits):
    return [{"logits": torch.tensor(lg, dtype=torch.float32),
             "probs": torch.tensor(lg, dtype=torch.float32).softmax(-1),
             "embedding": torch.nn.functional.normalize(torch.tensor(lg + [1.0]), dim=0)}
            for lg in logits]


def test_open_set_samples_prompt_every_cell_with_the_known_classes():
    import dataclasses

    @dataclasses.dataclass
    class S:
        key: str
        label: str
        label_set: list
        meta: dict

    out = open_set_samples([S("a", "monocyte", ["x"], {}), S("b", "myeloblast", ["x"], {})],
                           KNOWN)
    assert [s.label_set for s in out] == [KNOWN, KNOWN]
    assert [s.label for s in out] == ["monocyte", "lymphocyte"]  # a stand-in for the unseen
    assert [s.meta["open_set_truth"] for s in out] == ["monocyte", "myeloblast"]


def test_open_set_ranks_unseen_types_by_each_score():
    samples = [_sample(f"k{i}", "monocyte") for i in range(4)] + \
        [_sample(f"u{i}", "myeloblast") for i in range(3)]
    for s in samples:  # as open_set_samples leaves them
        s.meta["open_set_truth"] = s.label
    confident = [[6.0, 0, 0], [0, 5.0, 0], [0, 0, 7.0], [4.0, 0, 0]]
    flat = [[0.1, 0, 0], [0, 0.2, 0], [0.3, 0.3, 0]]
    ev = OpenSetEvaluator(known=KNOWN)
    ev.bind(_dataset(samples))
    ev.process(_batch([s.key for s in samples], None), _preds(confident + flat))
    m = ev.evaluate()
    assert m["n_known"] == 4 and m["n_unknown"] == 3
    for s in ("msp", "energy"):
        assert m[f"auroc/{s}"] == 1.0 and m[f"aupr/{s}"] == 1.0 and m[f"fpr@95tpr/{s}"] == 0.0
    assert m["auroc"] == m["auroc/msp"] and "auroc/trust" not in m
    assert set(ev.roc) == {"msp", "energy"} and ev.roc["msp"]["tpr"][-1] == 1.0
    # with a trust state over the known classes: its score, and the shares it flags
    ev = OpenSetEvaluator(known=KNOWN)
    ev.bind(_dataset(samples))
    bank = torch.nn.functional.normalize(torch.randn(5, 4, generator=torch.Generator()
                                                     .manual_seed(0)), dim=-1)
    ev.state = _state(scorers={"knn": {"k": 2}, "msp": {}}, tensors={"knn.bank": bank})
    ev.process(_batch([s.key for s in samples], None), _preds(confident + flat))
    m = ev.evaluate()
    assert m["auroc"] == m["auroc/trust"] == 1.0
    # the state's other fitted scorers under their names (msp is reported once)
    assert 0 <= m["auroc/knn"] <= 1 and set(ev.roc) == {"msp", "energy", "trust", "knn"}
    assert m["flagged_known"] == 0.0 and m["flagged_unknown"] == 1.0


def test_open_set_needs_the_known_prompt_and_the_truth():
    ev = OpenSetEvaluator(known=KNOWN)
    ev.bind(_dataset([_sample("a", "monocyte")]))
    bad = {"keys": ["a"], "classes": [["monocyte", "lymphocyte"]], "labels": torch.tensor([0])}
    with pytest.raises(ValueError, match="not the known classes"):
        ev.process(bad, _preds([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="no true type recorded"):
        ev.process(_batch(["zz"], None), _preds([[1.0, 0, 0]]))
    with pytest.raises(ValueError, match="trained classes"):
        OpenSetEvaluator(known="monocyte")
    with pytest.raises(ValueError, match="not logit scores"):
        OpenSetEvaluator(known=KNOWN, scores=["mahalanobis"])


def test_selective_coverage_at_targets_and_the_states_referral():
    # ten items, confidence falling; the 4th and 8th most confident are wrong
    logits = [[9.0 - 0.5 * i, 0.0, 0.0] for i in range(10)]
    labels = [0, 0, 0, 1, 0, 0, 0, 1, 0, 0]
    ev = SelectiveEvaluator(targets=[0.85, 0.99])
    ev.process(_batch([str(i) for i in range(10)], None, labels), _preds(logits))
    m = ev.evaluate()
    assert m["accuracy"] == 0.8 and m["n"] == 10
    assert m["coverage@acc99"] == 0.3        # the three most confident, all right
    assert m["coverage@acc85"] == 0.7        # 7 kept, 6 right: 0.857 (8 kept: 0.75)
    assert oracle_coverage(ev.risk_coverage, 0.5) == 1.0
    assert "referral_coverage" not in m
    ev = SelectiveEvaluator(targets=[0.9])
    ev.state = _state(referral_threshold=0.999, unknown_threshold=math.inf)
    ev.process(_batch([str(i) for i in range(10)], None, labels), _preds(logits))
    m = ev.evaluate()
    conf = torch.tensor(logits).softmax(-1).max(-1).values.numpy()
    decided = conf >= 0.999
    assert m["referral_coverage"] == pytest.approx(decided.mean())
    assert m["referral_accuracy"] == pytest.approx(
        np.mean([labels[i] == 0 for i in np.flatnonzero(decided)]))
    assert m["referral_target"] == 0.98
    assert 0 <= m["set_coverage@0.90"] <= 1 and m["set_size@0.90"] >= 1
    assert ev.coverage_target["state"]["coverage"] == m["referral_coverage"]


def test_suite_entries_name_the_evaluator(tmp_path):
    def suite(**entry):
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump({"entries": [
            {"dataset": "synthetic_smear", "root": "r", "task": "classify", **entry}]}))
        return path

    s = load_suite(suite(evaluator="open_set", options={"known": KNOWN}))
    assert s.entries[0].evaluator == "open_set"
    assert s.entries[0].label == "synthetic_smear/test:classify[open_set]"
    cases = [({"evaluator": "open_sett"}, "unknown evaluator 'open_sett'"),
             ({"evaluator": "open_set"}, "bad options for the open_set evaluator"),
             ({"evaluator": "selective", "options": {"targets": [1.5]}}, "targets must be"),
             ({"evaluator": "selective", "task": "detect"}, "scores classify items")]
    for entry, message in cases:
        with pytest.raises(ConfigError, match=message):
            load_suite(suite(**entry))
