"""report.html, overlays and the files of an analysis: self-contained, one gallery tile per
cell, counts that match summary.json, a page that says when an image is not a smear."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from PIL import Image

from tests.analysis.conftest import truth_detector
from unihema.analysis.outputs import write_analysis
from unihema.analysis.records import read_cells_jsonl
from unihema.analysis.report import differential_svg
from unihema.analysis.run import analyze


class Page(HTMLParser):
    """The elements of a page a test reads: gallery figures, counts, ids, links."""

    def __init__(self) -> None:
        super().__init__()
        self.figures, self.counts, self.lineages, self.ids, self.links = [], {}, {}, {}, []
        self._key = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "figure" and "cell" in (a.get("class") or ""):
            self.figures.append(a)
        for attr in ("src", "href"):
            if a.get(attr):
                self.links.append(a[attr])
        self._key = (("count", a["data-count"]) if "data-count" in a else
                     ("lineage", a["data-lineage"]) if "data-lineage" in a else
                     ("id", a["id"]) if "id" in a else None)

    def handle_data(self, data):
        if self._key and data.strip():
            kind, name = self._key
            {"count": self.counts, "lineage": self.lineages, "id": self.ids}[kind].setdefault(
                name, data.strip())

    def handle_endtag(self, tag):
        self._key = None


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def check_page(page: Page, out) -> None:
    """The page shows every cell once and the counts of summary.json."""
    summary = json.loads((out / "summary.json").read_text())
    cells = read_cells_jsonl(out / "cells.jsonl")
    assert len(page.figures) == len(cells) == summary["n_cells"]
    assert sorted(int(f["data-id"]) for f in page.figures) == sorted(c.id for c in cells)
    assert sum(f["data-review"] == "1" for f in page.figures) == summary["needs_review"]
    assert {k: int(v) for k, v in page.counts.items()} == summary["counts"]
    assert {k: int(v) for k, v in page.lineages.items()} == summary["lineages"]
    assert int(page.ids["n-cells"]) == summary["n_cells"]
    assert int(page.ids["n-fields"]) == summary["n_fields"]


def test_the_files_and_the_page(tiny_pipe, small_field, tmp_path):
    a = analyze(tiny_pipe, small_field.image, um_per_px=0.2, progress=False,
                detections=truth_detector(small_field))
    paths = write_analysis(a, tmp_path)
    for name in ("cells.csv", "cells.jsonl", "summary.json", "summary.csv", "report.html"):
        assert paths[name].is_file()
    overlay = Image.open(tmp_path / "overlays" / "field-1.png")
    assert overlay.size == (480, 360)
    assert len((tmp_path / "cells.csv").read_text().splitlines()) == len(a.cells) + 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["fields"][0]["cells"] == len(a.cells) and "total" in summary["timings"]
    text = (tmp_path / "report.html").read_text()
    page = parse(text)
    check_page(page, tmp_path)
    # self-contained: pictures inline or beside the page, nothing fetched from elsewhere
    assert all(link.startswith("data:image/") or link == "overlays/field-1.png"
               for link in page.links)
    assert not re.search(r"<(script|link)[^>]+(src|href)=", text)
    assert 'id="differential-chart"' in text and 'id="not-a-smear"' not in text


def test_a_page_that_is_not_a_smear_says_so(tiny_pipe, tmp_path):
    blank = (Image.new("RGB", (200, 150), (240, 240, 240)))
    a = analyze(tiny_pipe, blank, progress=False, min_score=1.0)
    write_analysis(a, tmp_path)
    text = (tmp_path / "report.html").read_text()
    assert 'id="not-a-smear"' in text and "no cells found" in text
    assert 'id="differential"' not in text and 'id="platelets"' not in text
    check_page(parse(text), tmp_path)


def test_the_gallery_limit_keeps_the_most_uncertain_of_each_type(tiny_pipe, small_field,
                                                                   tmp_path):
    a = analyze(tiny_pipe, small_field.image, um_per_px=0.2, progress=False,
                detections=truth_detector(small_field))
    write_analysis(a, tmp_path, gallery_limit=10)
    page = parse((tmp_path / "report.html").read_text())
    assert len(page.figures) == 10
    types = {f["data-type"] for f in page.figures}
    assert types == {c.type for c in a.cells} or len(types) == 10
    red = [c for c in a.cells if c.type == "red blood cell"]
    shown = [int(f["data-id"]) for f in page.figures if f["data-type"] == "red blood cell"]
    most = max(c.uncertainty for c in red)
    assert {c.id for c in red if c.uncertainty == most} & set(shown)


def test_differential_chart_draws_a_bar_and_interval_per_type():
    svg = differential_svg({"lymphocyte": {"percent": 30.0, "low": 20.0, "high": 41.0},
                            "monocyte": {"percent": 6.0, "low": 2.0, "high": 14.0}})
    assert svg.count("<rect") == 2 and svg.count("<line") == 2 and "30.0 %" in svg
