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


def test_the_review_view_with_trust_and_smear_flags_in_a_browser(tiny_pipe, small_field,
                                                                 tmp_path):
    """Flags at the top, the trust section, and the review list in the order of
    :func:`~unihema.analysis.report.review_rank`, with each tile's set and reason."""
    from tests.analysis.conftest import truth_detector, white_trust
    from unihema.analysis.flags import FlagPolicy, FlagRule
    from unihema.analysis.outputs import write_analysis
    from unihema.analysis.report import review_rank
    from unihema.analysis.run import analyze

    browser = _browser()
    def run():
        return analyze(tiny_pipe, small_field.image, progress=False, um_per_px=0.2,
                       detections=truth_detector(small_field),
                       flags=FlagPolicy((FlagRule("parasites", ("malaria parasite",)),)))

    tiny_pipe.trust = white_trust(referral_threshold=0.4)
    try:  # a third of the white cells unknown
        scores = sorted(c.unknown_score for c in run().cells if c.unknown_score is not None)
        tiny_pipe.trust = white_trust(scores[len(scores) * 2 // 3], referral_threshold=0.4)
        a = run()
    finally:
        tiny_pipe.trust = None
    out = tmp_path / "analysis"
    write_analysis(a, out)
    url = (out / "report.html").as_uri()
    page = parse(_run(browser, "--dump-dom", url).stdout)
    check_page(page, out)
    dom = _run(browser, "--dump-dom", url).stdout
    assert 'id="review-flags" class="flagged" data-needs-review="1"' in dom
    assert 'data-flag="parasites"' in dom and 'id="trust" data-trust="1"' in dom
    assert dom.index('id="review-flags"') < dom.index('id="counts"')  # flags at the top

    # #review: the cells to review gathered in one list, most doubtful first
    dom = _run(browser, "--dump-dom", url + "#review").stdout
    figures = parse(dom).figures
    assert len(figures) == len(a.cells)
    listed = dom[dom.index('id="review-list"'):]
    ids = [int(f["data-id"]) for f in parse(listed).figures]
    expected = [c.id for c in sorted(a.cells, key=review_rank) if c.needs_review]
    assert ids == expected and len(ids) > 1
    unknown = [c for c in a.cells if c.unknown]
    assert unknown and ids[:len(unknown)] == [c.id for c in sorted(unknown, key=review_rank)]
    # each judged tile shows its set, and its reason when it has one
    assert 'class="set">{' in listed and 'class="why">unknown type (score' in listed

    shot = tmp_path / "review.png"
    r = _run(browser, f"--screenshot={shot}", "--window-size=1280,1400", url + "#review")
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    assert len(np.unique(np.asarray(Image.open(shot).convert("RGB").resize((64, 70)))
                         .reshape(-1, 3), axis=0)) > 20
