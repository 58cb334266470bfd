"""Trust fitted and scored through a real (tiny, untrained) model on synthetic cells."""

from __future__ import annotations

import json

import pytest
import torch

from unihema.cli import main
from unihema.config import load_config
from unihema.modeling.model import UniHema
from unihema.benchmark.trust_cells import collect_cells, known_classes
from unihema.benchmark.trust import evaluate_trust, fit_trust
from unihema.trust.state import TRUST_JSON, TrustState

KNOWN = ["segmented neutrophil", "band neutrophil", "lymphocyte", "monocyte", "eosinophil",
         "basophil"]
WHITE = KNOWN + ["myeloblast", "promyelocyte", "atypical lymphocyte"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, synth_root, tiny):
    torch.manual_seed(0)
    entry = f"{{name: synthetic_smear, root: {synth_root}, split: train, tasks: [classify], "
    overrides = tiny + [
        "model.tasks=[classify]",
        f"data.train=[{entry}candidates: {{classify: {KNOWN}}}}}]",
        f"data.val=[{entry}candidates: {{classify: {KNOWN}}}}}]",
        f"data.test=[{entry}candidates: {{classify: {WHITE}}}}}]",
    ]
    cfg = load_config(None, overrides)
    folder = tmp_path_factory.mktemp("model") / "model"
    UniHema.from_config(cfg).eval().save_pretrained(folder)
    return folder, cfg, overrides


def test_cells_are_prompted_with_the_trained_types(setup):
    from unihema.benchmark.models import load_model

    folder, cfg, _ = setup
    loaded = load_model(folder)
    assert known_classes(cfg.data.val) == KNOWN
    cells = collect_cells(loaded, cfg, cfg.data.test[0], KNOWN, limit=12)
    assert cells.logits.shape == (len(cells), len(KNOWN)) and len(cells) <= 12
    assert torch.allclose(cells.embeddings.norm(dim=-1), torch.ones(len(cells)), atol=1e-4)
    assert set(cells.names) <= set(WHITE)
    # the head's logits are its scale times the cosine to the class-name embeddings
    state = fit_trust(loaded, cfg, limit=12, train_limit=12, save=False)
    assert torch.allclose(state.logits_from_embeddings(cells.embeddings), cells.logits,
                          atol=1e-3)


def test_fit_writes_the_state_and_eval_scores_it(setup, tmp_path):
    folder, cfg, _ = setup
    state = fit_trust(folder, cfg, limit=16, train_limit=16)
    back = TrustState.load(folder)
    assert back is not None and back.classes == KNOWN
    assert back.fitted_on["split"] == "val" and back.fitted_on["model_sha256"]
    assert set(back.scorers) == {"msp", "energy", "mahalanobis", "knn", "names"}
    assert back.unknown_threshold == pytest.approx(state.unknown_threshold)
    results = evaluate_trust(folder, cfg, limit=16, out=tmp_path)
    (label, r), = [(k, v) for k, v in results.items() if k != "meta"]
    assert label == "synthetic_smear/train" and r["cells"] == r["known"] + r["unknown"]
    assert set(r["open_set"]) == set(back.scorers)
    assert 0.0 <= r["referral"]["coverage"] <= 1.0
    assert (tmp_path / "trust_results.md").read_text().count("|") > 20
    json.loads((tmp_path / "trust_results.json").read_text())
    assert (tmp_path / "reliability_synthetic_smear_train.png").is_file()


def test_cli_fit_eval_show(setup, tmp_path, capsys):
    folder, _, overrides = setup
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text("name: t\n")
    args = ["--model", str(folder), "--config", str(cfg_file), "--limit", "8", "--no-progress",
            *overrides]
    assert main(["trust", "fit", *args, "--train-limit", "8", "--method", "mahalanobis"]) == 0
    assert "trust fitted on" in capsys.readouterr().out
    assert TrustState.load(folder).unknown_method == "mahalanobis"
    assert main(["trust", "eval", *args, "--out", str(tmp_path / "ev"), "--no-plots"]) == 0
    assert "AUROC" in capsys.readouterr().out
    assert main(["trust", "show", "--model", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out)["unknown_method"] == "mahalanobis"
    (folder / TRUST_JSON).unlink()
    assert main(["trust", "eval", *args]) == 2
    assert "run `unihema trust fit` first" in capsys.readouterr().err
