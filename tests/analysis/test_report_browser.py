"""report.html in a real browser (headless Chromium): the page the browser builds holds one
gallery tile per cell and the counts of summary.json, and it renders to a screenshot."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from tests.analysis.test_report import check_page, parse
from unihema.cli import main

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"no headless browser on PATH ({', '.join(BROWSERS)}); .ci/run installs "
                f"chromium where apt is available")


def _run(browser, *args, timeout=90):
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--no-first-run", "--mute-audio", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_the_report_in_a_browser(tiny_pipe, small_field, tmp_path, capsys):
    browser = _browser()
    field = tmp_path / "field.png"
    Image.fromarray(small_field.image).save(field)
    out = tmp_path / "analysis"
    model = str(tmp_path / "model")
    tiny_pipe.model.save_pretrained(model, extra={"image_size": tiny_pipe.image_size})
    assert main(["analyze", str(field), "--model", model, "--out", str(out),
                 "--um-per-px", "0.2", "--min-score", "0.3", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((out / "summary.json").read_text())
    assert printed["n_cells"] > 0

    url = (out / "report.html").as_uri()
    dom = _run(browser, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = parse(dom.stdout)
    check_page(page, out)  # one tile per cell, counts as in summary.json
    assert "<svg" in dom.stdout or printed["differential"] is None

    # the "needs review only" filter, set by the page's #review address, hides the others
    dom = _run(browser, "--dump-dom", url + "#review")
    figures = parse(dom.stdout).figures
    hidden = [f for f in figures if "none" in (f.get("style") or "")]
    assert len(figures) == printed["n_cells"] and 0 < len(hidden) < len(figures)
    assert {f["data-id"] for f in hidden} == {f["data-id"] for f in figures
                                              if f["data-review"] != "1"}

    shot = tmp_path / "report.png"
    r = _run(browser, f"--screenshot={shot}", "--window-size=1280,1600", url)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 1600)
    # the page is drawn: the dark header band on top, more than one colour below it
    assert sum(image.getpixel((640, 10))) < 200
    pixels = np.asarray(image.resize((64, 80))).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 20
