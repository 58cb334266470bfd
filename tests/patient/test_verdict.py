"""One patient's verdict: from cell pictures (``pipe.patient``) and from a whole-smear analysis
(its white cells cut again from the field), with the evidence cells in report.html."""

from __future__ import annotations

import json

import pytest

from tests.analysis.conftest import FIELD_UM_PER_PX, small_field, tiny_pipe, truth_detector  # noqa: F401
from unihema.analysis.outputs import write_analysis
from unihema.analysis.run import analyze
from unihema.patient.cohort import cohort_features, train_encoder
from unihema.patient.encoder import EncoderConfig
from unihema.patient.verdict import attach_verdict


@pytest.fixture(scope="module")
def encoder_dir(pipe, cohort_dir, tmp_path_factory):
    bags, feats = cohort_features(pipe.model, pipe.processor, cohort_dir,
                                  cache_dir=tmp_path_factory.mktemp("cache"), progress=False)
    path = tmp_path_factory.mktemp("encoder")
    train_encoder(pipe.model, bags, feats,
                  EncoderConfig(hidden=16, attention=8, epochs=3, batch_size=4)).save(path)
    return path


def test_pipe_patient_on_a_folder_of_cells(pipe, cohort_dir, encoder_dir):
    folder = cohort_dir / "cells" / "P01"
    v = pipe.patient(folder, encoder_dir, top=3)
    n = len(list(folder.glob("*.png")))
    assert v["n_cells"] == n and len(v["evidence"]) == 3
    assert abs(sum(v["probabilities"].values()) - 1) < 1e-3
    assert v["diagnosis"] == max(v["probabilities"], key=v["probabilities"].get)
    w = [e["attention"] for e in v["evidence"]]
    assert w == sorted(w, reverse=True) and all(e["image"].endswith(".png")
                                                for e in v["evidence"])
    assert len(v["embedding"]) == pipe.model.config.heads.embed_dim
    assert [f["finding"] for f in v["findings"]] == ["PML::RARA"]
    assert v["warnings"] == [] and "_pictures" not in v
    json.dumps(v)  # JSON-ready


def test_the_analysis_report_shows_the_patient_and_its_evidence(tiny_pipe, small_field,  # noqa: F811
                                                                encoder_dir, tmp_path):
    image = tmp_path / "field.png"
    from PIL import Image

    Image.fromarray(small_field.image).save(image)
    result = analyze(tiny_pipe, [image], um_per_px=FIELD_UM_PER_PX, progress=False,
                     detections=truth_detector(small_field))
    white = [c for c in result.cells if c.lineage == "white blood cell"]
    assert white
    v = attach_verdict(tiny_pipe, result, encoder_dir, [image], tmp_path, quiet=True)
    assert v["n_cells"] == len(white)
    assert {e["cell_id"] for e in v["evidence"]} <= {c.id for c in white}
    # another model embedded the encoder's training cells: said, not hidden
    assert any("another model" in w for w in v["warnings"])
    write_analysis(result, tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert 'id="patient"' in page and f'id="patient-diagnosis">{v["diagnosis"]}' in page
    assert page.count('class="cell evidence"') == len(v["evidence"])
    assert json.loads((tmp_path / "patient.json").read_text())["diagnosis"] == v["diagnosis"]
    # without the images, the gallery pictures stand in, and the verdict says so
    v2 = tiny_pipe.patient(result, encoder_dir)
    assert v2["n_cells"] == len(white) and any("gallery" in w for w in v2["warnings"])
