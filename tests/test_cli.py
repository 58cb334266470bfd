"""The `unihema` command, run in-process (fast) and once as a real subprocess (entry point)."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from unihema.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for word in ("demo", "data", "config", "examples:"):
        assert word in out


def test_console_script_is_installed():
    exe = shutil.which("unihema") or str(__import__("pathlib").Path(sys.executable).parent /
                                         "unihema")
    res = subprocess.run([exe, "data", "list"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "synthetic_smear" in res.stdout and "CC0" in res.stdout


def test_data_info(capsys):
    assert main(["data", "info", "synthetic_smear"]) == 0
    out = capsys.readouterr().out
    assert "license" in out and "manifest.json" in out
    assert main(["data", "info", "synthetic_smear", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info["tasks"]) == {"detect", "classify", "segment", "morphology", "mlm", "vqa"}


def test_unknown_dataset_lists_registered(capsys):
    assert main(["data", "info", "bcdd"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset adapter 'bcdd'" in err and "synthetic_smear" in err


def test_generate_check_preview(tmp_path, capsys):
    root = tmp_path / "synth"
    assert main(["data", "generate", "--out", str(root), "--train", "4", "--val", "2",
                 "--test", "2", "--size", "128", "--workers", "1", "--no-progress"]) == 0
    assert "wrote 8 fields" in capsys.readouterr().out
    assert main(["data", "check", "synthetic_smear", "--root", str(root), "--no-progress",
                 "--json", str(tmp_path / "check.json")]) == 0
    out = capsys.readouterr().out
    assert "no problems found" in out
    for task in ("detect", "classify", "segment", "morphology", "mlm", "vqa"):
        assert task in out
    report = json.loads((tmp_path / "check.json").read_text())
    assert report["ok"] and report["splits"]["train"]["summary"]["tasks"]["detect"] == 4
    png = tmp_path / "grid.png"
    assert main(["data", "preview", "synthetic_smear", "--root", str(root), "--out", str(png),
                 "--n", "6"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_fails_on_broken_data(tmp_path, capsys):
    root = tmp_path / "synth"
    main(["data", "generate", "--out", str(root), "--train", "3", "--val", "1", "--test", "1",
          "--size", "96", "--workers", "1", "--no-progress"])
    capsys.readouterr()
    images = sorted((root / "train" / "images").glob("*.png"))
    images[0].write_bytes(images[0].read_bytes()[:100])  # truncated
    images[1].unlink()  # missing
    assert main(["data", "check", "synthetic_smear", "--root", str(root), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert images[1].name in out and images[0].name in out
    assert "problem(s)" in out


def test_config_show_and_schema(tmp_path, capsys):
    assert main(["config", "show", "configs/quick/synthetic.yaml", "train.lr=0.01"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.01" in out and "quick-synthetic" in out
    assert main(["config", "schema"]) == 0
    assert "data.augment.hflip" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent("""
        _base_: %s
        train: {learning_rate: 0.1}
    """ % (__import__("pathlib").Path("configs/_base_/default.yaml").resolve())))
    assert main(["config", "show", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "train.learning_rate: unknown key" in err and "valid keys of train" in err


def test_demo_data_only_reuses_and_regenerates(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    args = ["demo", "--quick", "--data-only", "--out", str(out_dir), "--set", "synth.workers=1"]
    assert main(args + ["synth.size=96"]) == 0
    out = capsys.readouterr().out
    assert "supervision per task" in out and "no problems" in out
    for name in ("report.md", "preview.png", "data_check.json", "config.yaml"):
        assert (out_dir / name).is_file(), name
    assert "| split | samples |" in (out_dir / "report.md").read_text()
    # a second run reuses the generated data instead of writing it again
    manifest = out_dir / "data" / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    assert main(args + ["synth.size=96"]) == 0
    assert manifest.stat().st_mtime_ns == stamp
    # a different generator config regenerates; a repeated --set adds to the earlier ones
    assert main(args + ["--set", "synth.size=64"]) == 0
    config = json.loads(manifest.read_text())["config"]
    assert config["size"] == 64 and config["workers"] == 1


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """The quick demo, run once: data, 60 training steps, evaluation, report, checkpoint."""
    out_dir = tmp_path_factory.mktemp("quickdemo")
    code = main(["demo", "--quick", "--out", str(out_dir), "--set", "synth.workers=1",
                 "train.max_steps=30"])
    return code, out_dir


def test_demo_quick_trains_evaluates_and_reports(quick_demo):
    code, out_dir = quick_demo
    assert code == 0
    for name in ("report.md", "metrics.json", "preview.png", "detect_0.png", "segment_0.png",
                 "model/config.json", "model/model.safetensors", "metrics.jsonl"):
        assert (out_dir / name).is_file(), name
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert set(metrics) == {"detect", "classify", "segment", "morphology", "mlm", "vqa"}
    assert "exact_match_shuffled" in metrics["vqa"] and "grounding_gap" in metrics["mlm"]
    report = (out_dir / "report.md").read_text()
    assert "Held-out test metrics" in report and "VQA exact match" in report
    assert "UniHemaPipeline.from_pretrained" in report
    # the steps that actually ran, and why training ended (the quick demo's cap is 30 steps)
    assert "training" in report and "30 steps (stopped at the step cap" in report
    # the items each figure rests on: every test field of the quick split, its white cells
    fields = len((out_dir / "data" / "test" / "fields.jsonl").read_text().splitlines())
    white = metrics["classify"]["n_scored_white"]
    assert metrics["detect"]["n_scored"] == fields and 0 < white <= metrics["classify"]["n_scored"]
    assert f"scored on: detect {fields} fields, classify " in report
    assert f"({white} white cells)" in report
    # the per-cell trust state, fitted on the validation white cells, lies beside the model
    trust = json.loads((out_dir / "model" / "trust.json").read_text())
    assert trust["fitted_on"]["split"] == "val" and trust["fitted_on"]["val_cells"] > 0
    assert f"fitted on {trust['fitted_on']['val_cells']} validation white cells" in report


def test_inference_commands(quick_demo, capsys, tmp_path):
    _, out_dir = quick_demo
    model = str(out_dir / "model")
    image = str(sorted((out_dir / "data" / "test" / "images").glob("*.png"))[0])
    crop = str(sorted((out_dir / "data" / "test" / "crops").glob("*.png"))[0])
    question = "How many platelets are in the image?"
    assert main(["ask", "--model", model, image, question]) == 0
    from unihema.api import UniHemaPipeline

    # the command prints exactly what the Python API answers (30 steps may give an empty one)
    answer = UniHemaPipeline.from_pretrained(model).ask(image, question)
    assert capsys.readouterr().out == answer["answer"] + "\n"
    # the demo model answers from its reading of the image, and shows it on request
    assert main(["ask", "--model", model, image, question, "--show-reading"]) == 0
    reading = UniHemaPipeline.from_pretrained(model).read(image)
    assert capsys.readouterr().out.splitlines()[-1] == "reading: " + (
        "; ".join(f"{e['text']} ({e['confidence']:.2f})" for e in reading["entries"])
        or "(this model reads nothing: it was trained without model.reading)")
    # --json: the API's result, warnings included
    assert main(["ask", "--model", model, image, question, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == answer
    assert reading["report"].startswith("This field")
    png = tmp_path / "det.png"
    assert main(["detect", "--model", model, image, "--min-score", "0", "--out", str(png)]) == 0
    assert "counts (score >= 0):" in capsys.readouterr().out and png.is_file()
    png = tmp_path / "seg.png"
    assert main(["segment", "--model", model, image, "--out", str(png)]) == 0
    assert "background" in capsys.readouterr().out and png.is_file()
    assert main(["classify", "--model", model, crop, "--labels", "lymphocyte,monocyte"]) == 0
    assert "label:" in capsys.readouterr().out
    assert main(["describe", "--model", model, crop]) == 0
    assert "nucleus_shape" in capsys.readouterr().out
    assert main(["ask", "--model", str(tmp_path), image, "q?"]) == 2
    assert "not a unihema checkpoint" in capsys.readouterr().err


def test_eval_command_scores_the_demo_run_folder(quick_demo, tmp_path, capsys):
    """`unihema eval --suite configs/eval/demo.yaml --model RUN` on the quick demo's run folder
    (the suite pointed at its data): tables printed, results.json, results.md and plots."""
    import yaml

    _, out_dir = quick_demo
    suite = yaml.safe_load((Path(__file__).parents[1] / "configs/eval/demo.yaml").read_text())
    for e in suite["entries"]:
        e["root"] = str(out_dir / "data")
        if e["task"] in ("vqa", "mlm"):
            e["limit"] = 12
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    report = tmp_path / "report"
    assert main(["eval", "--suite", str(path), "--model", str(out_dir), "--out",
                 str(report), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "mAP50" in printed and "mean_dice_fg" in printed
    results = json.loads((report / "results.json").read_text())
    assert {"meta", "detect", "classify", "segment", "vqa", "mlm"} <= set(results)
    assert "exact_match_shuffled" in results["vqa"]["synthetic_smear"]
    assert (report / "results.md").is_file()
    assert list(report.rglob("*.png"))


def test_train_overrides_may_follow_an_option(capsys):
    """``KEY=VALUE`` words after an option still count as overrides (argparse alone would call
    them unrecognised): the bad second override is what the error names."""
    code = main(["train", "--config", "configs/quick/synthetic.yaml", "train.max_steps=2",
                 "--no-progress", "train.warmup_steps=-1"])
    err = capsys.readouterr().err
    assert code == 2 and "train.warmup_steps" in err and "unrecognized" not in err
