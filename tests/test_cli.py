"""The `unihema` command, run in-process (fast) and once as a real subprocess (entry point)."""

import json
import shutil
import subprocess
import sys
import textwrap

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


def test_demo_quick(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out_dir), "--set", "synth.size=96",
                 "synth.workers=1"]) == 0
    out = capsys.readouterr().out
    assert "supervision per task" in out and "no problems" in out
    for name in ("report.md", "preview.png", "data_check.json", "config.yaml"):
        assert (out_dir / name).is_file(), name
    report = (out_dir / "report.md").read_text()
    assert "| split | samples |" in report and "preview.png" in report
    # a second run reuses the generated data instead of writing it again
    manifest = out_dir / "data" / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    assert main(["demo", "--quick", "--out", str(out_dir), "--set", "synth.size=96",
                 "synth.workers=1"]) == 0
    assert manifest.stat().st_mtime_ns == stamp
    # a different generator config regenerates
    assert main(["demo", "--quick", "--out", str(out_dir), "--set", "synth.size=64",
                 "synth.workers=1"]) == 0
    assert json.loads(manifest.read_text())["config"]["size"] == 64
