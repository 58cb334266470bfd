"""``unihema analyze``: its help, its outputs and its errors."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from unihema.cli import main


@pytest.fixture(scope="module")
def model_dir(tiny_pipe, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "model"
    tiny_pipe.model.save_pretrained(path, extra={"image_size": tiny_pipe.image_size})
    return str(path)


def test_help_names_the_inputs_outputs_and_scale(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["analyze", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for word in ("--um-per-px", "--json", "report.html", "cells.csv", "tiled TIFF"):
        assert word in text


def test_a_folder_is_one_smear(model_dir, small_field, tmp_path, capsys):
    fields = tmp_path / "fields"
    fields.mkdir()
    for name in ("one.png", "two.jpg"):
        Image.fromarray(small_field.image[:200, :240]).save(fields / name)
    out = tmp_path / "out"
    assert main(["analyze", str(fields), "--model", model_dir, "--out", str(out),
                 "--um-per-px", "0.2", "--min-score", "0.3", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "cells in 2 field(s)" in text and "report.html" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_fields"] == 2 and [f["name"] for f in summary["fields"]] == \
        ["one.png", "two.jpg"]
    assert sorted(p.name for p in (out / "overlays").iterdir()) == ["one.png", "two.png"]


def test_min_score_per_class(model_dir, small_field, tmp_path, capsys):
    path = tmp_path / "f.png"
    Image.fromarray(small_field.image).save(path)
    assert main(["analyze", str(path), "--model", model_dir, "--out", str(tmp_path / "o"),
                 "--um-per-px", "0.2", "--min-score",
                 "platelet=1.01,red blood cell=0,white blood cell=0", "--no-progress"]) == 0
    lineages = json.loads((tmp_path / "o" / "summary.json").read_text())["lineages"]
    assert "platelet" not in lineages and lineages.get("red blood cell", 0) > 0
    with pytest.raises(SystemExit) as exit_:
        main(["analyze", str(path), "--model", model_dir, "--out", str(tmp_path / "p"),
              "--min-score", "platelet=high"])
    assert exit_.value.code == 2
    assert "'platelet=high' is not CLASS=SCORE" in capsys.readouterr().err


def test_errors_name_the_problem(model_dir, tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "missing.png"), "--model", model_dir,
                 "--out", str(tmp_path / "o")]) == 2
    assert "missing.png" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path), "--model", model_dir, "--out",
                 str(tmp_path / "o")]) == 2
    assert "no images" in capsys.readouterr().err
    Image.new("RGB", (64, 64)).save(tmp_path / "x.png")
    assert main(["analyze", str(tmp_path / "x.png"), "--model", model_dir, "--out",
                 str(tmp_path / "o"), "--um-per-px", "-1"]) == 2
    assert "--um-per-px" in capsys.readouterr().err


def test_flags_file_sets_the_smear_rules(model_dir, small_field, tmp_path, capsys):
    field = tmp_path / "field.png"
    Image.fromarray(small_field.image[:200, :240]).save(field)
    rules = tmp_path / "flags.yaml"
    rules.write_text("rules:\n  - {kind: any_red_cell, types: [red blood cell]}\n")
    out = tmp_path / "out"
    assert main(["analyze", str(field), "--model", model_dir, "--out", str(out),
                 "--um-per-px", "0.2", "--min-score", "0.3", "--no-progress",
                 "--flags", str(rules)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    review = summary["review"]
    assert review["checked"] == ["any_red_cell"]
    reds = summary["lineages"].get("red blood cell", 0)
    assert review["needs_review"] == (reds > 0)
    if reds:
        assert review["flags"][0]["count"] == reds
        assert f"review: {review['flags'][0]['reason']}" in capsys.readouterr().out
    rules.write_text("rules:\n  - {kind: x, types: [blastt]}\n")
    assert main(["analyze", str(field), "--model", model_dir, "--out", str(out),
                 "--flags", str(rules)]) == 2
    err = capsys.readouterr().err
    assert str(rules) in err and "'blastt' is not a canonical cell type" in err
