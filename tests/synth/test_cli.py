"""``unihema data field`` / ``unihema data scan``: files written, options reach the spec."""

from __future__ import annotations

import json

import pytest
import tifffile

from unihema.cli import main


def test_data_field_writes_every_magnification(tmp_path, capsys):
    rc = main(["data", "field", "--out", str(tmp_path), "--width", "160", "--height", "120",
               "--um-per-px", "0.25", "--magnifications", "0.5,1,2", "--parasitaemia", "0.1",
               "--red-mix", "schistocyte=0.1", "--seed", "3"])
    assert rc == 0
    metas = {f: json.loads((tmp_path / f"field_x{f}.json").read_text()) for f in ("0.5", "1", "2")}
    assert [metas[f]["width"] for f in ("0.5", "1", "2")] == [80, 160, 320]
    assert metas["1"]["um_per_px"] == 0.25 and metas["2"]["um_per_px"] == 0.125
    spec = metas["1"]["spec"]
    assert spec["parasitaemia"] == 0.1 and spec["red_mix"] == {"schistocyte": 0.1}
    lineages = {f: m["summary"]["lineages"] for f, m in metas.items()}
    assert lineages["0.5"] == lineages["1"] == lineages["2"]
    assert (tmp_path / "field_x2_cells.jsonl").exists()
    assert "field_x1.png" in capsys.readouterr().out


def test_data_scan_writes_a_tiled_tiff(tmp_path, capsys):
    rc = main(["data", "scan", "--out", str(tmp_path), "--size", "640", "--height", "384",
               "--tile", "128", "--seam", "128", "--seam-cells", "6", "--um-per-px", "0.25",
               "--no-progress", "--no-instances"])
    assert rc == 0
    meta = json.loads((tmp_path / "scan.json").read_text())
    assert (meta["width"], meta["height"], meta["seam_cells"]) == (640, 384, 6)
    with tifffile.TiffFile(tmp_path / "scan.tif") as tf:
        assert tf.pages[0].is_tiled and tf.pages[0].tilewidth == 128
    assert not (tmp_path / "scan_instances.tif").exists()
    assert "6 placed there" in capsys.readouterr().out


def test_bad_shares_are_reported(tmp_path, capsys):
    assert main(["data", "field", "--out", str(tmp_path), "--red-mix", "schistocyte"]) != 0
    assert "--red-mix expects NAME=SHARE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "scan", "--out", str(tmp_path), "--compression", "lzw"])


def test_data_cohort_writes_a_loadable_cohort(tmp_path, capsys):
    from unihema.data.patients import load_cohort

    rc = main(["data", "cohort", "--out", str(tmp_path), "--patients", "3", "--cells", "4:6",
               "--seed", "2", "--no-progress"])
    assert rc == 0
    bags = load_cohort(tmp_path, check_files=True)
    assert len(bags) == 3 and all(4 <= len(b.cells) <= 6 for b in bags)
    assert "3 patients" in capsys.readouterr().out
    assert main(["data", "cohort", "--out", str(tmp_path), "--cells", "9:2"]) != 0
    assert "need 1 <= LO <= HI" in capsys.readouterr().err
