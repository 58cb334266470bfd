"""The report's patient section: probabilities readable by tools, evidence pictures inline,
text escaped, nothing when the analysis carries no verdict."""

from __future__ import annotations

import numpy as np

from unihema.analysis.patient_section import render


def test_the_section_shows_probabilities_evidence_and_warnings():
    verdict = {"diagnosis": "npm1", "probabilities": {"healthy": 0.1, "npm1": 0.9},
               "n_cells": 120, "warnings": ["<b>another model</b>"],
               "evidence": [{"index": 4, "cell_id": 17, "attention": 0.12, "type": "myeloblast"},
                            {"index": 9, "cell_id": 3, "attention": 0.05, "type": "monocyte"}],
               "findings": [{"finding": "NPM1", "similarity": 0.61}],
               "_pictures": {4: np.zeros((8, 8, 3), np.uint8)}}
    page = render(verdict)
    assert page.startswith('<section id="patient">') and page.endswith("</section>")
    assert 'id="patient-diagnosis">npm1<' in page
    assert 'data-diagnosis="npm1">0.900<' in page and page.index("npm1") < page.index("healthy<")
    assert page.count('class="cell evidence"') == 2 and page.count("data:image/jpeg") == 1
    assert 'data-id="17" data-attention="0.12"' in page and "12.0 %" in page
    assert "NPM1 (0.61)" in page and "120 white cells" in page
    assert "&lt;b&gt;another model" in page and "<b>another" not in page
