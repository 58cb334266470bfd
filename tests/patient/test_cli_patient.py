"""``unihema patient eval | train | retrieve`` end to end on a small cohort with a tiny model."""

from __future__ import annotations

import json
import shutil

from unihema.cli import main


def test_eval_train_retrieve(model_dir, cohort_dir, tmp_path, capsys):
    cohort = tmp_path / "cohort"
    shutil.copytree(cohort_dir, cohort, ignore=shutil.ignore_patterns("cache", "eval",
                                                                      "folds.json"))
    small = ["--epochs", "2", "--no-progress"]
    assert main(["patient", "eval", "--model", str(model_dir), "--cohort", str(cohort),
                 "--folds", "2", *small]) == 0
    out = capsys.readouterr().out
    assert "| attention encoder |" in out and "| mean pooling |" in out and "wall time" in out
    assert (cohort / "eval" / "patient_eval.json").is_file()
    assert (cohort / "folds.json").is_file() and list((cohort / "cache").glob("cells-*"))

    enc = tmp_path / "enc"
    assert main(["patient", "train", "--model", str(model_dir), "--cohort", str(cohort),
                 "--out", str(enc), *small]) == 0
    assert "trained on 10 patients" in capsys.readouterr().out

    assert main(["patient", "retrieve", "--model", str(model_dir), "--reference", str(cohort),
                 "--patient", "P04", "--encoder", str(enc), "--k", "3", "--json",
                 *small]) == 0
    r = json.loads(capsys.readouterr().out)
    assert len(r["nearest"]) == 3 and "P04" not in [h["patient_id"] for h in r["nearest"]]
    assert r["query"].startswith("reference patient P04")

    # a folder of cells, no encoder given: one is trained on the reference and kept
    assert main(["patient", "retrieve", "--model", str(model_dir), "--reference", str(cohort),
                 "--patient", str(cohort / "cells" / "P01"), *small]) == 0
    text = capsys.readouterr().out
    assert "nearest 5 of 10 reference patients" in text and "predicted" in text
    assert list((cohort / "cache").glob("encoder-*/patient_encoder.json"))


def test_errors_are_one_line(model_dir, tmp_path, capsys):
    assert main(["patient", "eval", "--model", str(model_dir), "--cohort",
                 str(tmp_path / "none"), "--no-progress"]) == 2
    assert "no cohort file" in capsys.readouterr().err
    assert main(["patient", "retrieve", "--model", str(model_dir), "--reference",
                 str(tmp_path), "--patient", "x", "--encoder", str(tmp_path)]) == 2
