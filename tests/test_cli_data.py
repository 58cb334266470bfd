"""`unihema data list | info | example | check --spec`: the commands worker-facing users run."""

from __future__ import annotations

from unihema.cli import main


def test_list_shows_size_and_license(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == ["key", "tasks", "size", "license"]
    bccd = next(line for line in out.splitlines() if line.startswith("bccd "))
    assert "detect" in bccd and "364 images" in bccd and "MIT" in bccd


def test_info_shows_citation_and_size(capsys):
    assert main(["data", "info", "wbc_seg_zheng"]) == 0
    out = capsys.readouterr().out
    assert "size      400 images (300 + 100)" in out
    assert "Micron" in out and "Dataset 1/<nnn>.bmp" in out


def test_example_then_check(tmp_path, capsys):
    out_dir = tmp_path / "ex"
    assert main(["data", "example", "bccd", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "BCCD/Annotations/BloodImage_00001.xml" in out
    assert (out_dir / "BCCD" / "ImageSets" / "Main" / "test.txt").is_file()
    assert main(["data", "check", "bccd", "--root", str(out_dir), "--no-progress"]) == 0
    assert "no problems found" in capsys.readouterr().out
    # refuses a folder that is not empty
    assert main(["data", "example", "bccd", "--out", str(out_dir)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_check_generic_with_spec(tmp_path, capsys):
    root = tmp_path / "mine"
    assert main(["data", "example", "generic", "--out", str(root)]) == 0
    spec = root / "unihema_dataset.yaml"
    moved = tmp_path / "elsewhere.yaml"
    moved.write_text(spec.read_text())
    spec.unlink()
    capsys.readouterr()
    assert main(["data", "check", "generic", "--root", str(root), "--spec", str(moved),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "[train] 2 samples" in out and "red blood cell" in out
    assert main(["data", "check", "generic", "--root", str(root), "--no-progress"]) == 2
    assert "unihema_dataset.yaml not found" in capsys.readouterr().err
