"""LeukemiaAttri: attribute columns decode to the shared schema, text targets follow."""

from __future__ import annotations

from pathlib import Path

import pytest

import dataset_adapters  # noqa: F401 - registers the adapters
from dataset_adapters.leukemia_attri import (DEFAULT_NAMES, NOT_ANNOTATED, LeukemiaAttri,
                                             decode_attributes)
from unihema.data import vocab
from unihema.data.catalog import DataError


def test_decode_attributes_maps_onto_the_schema():
    raw, mapped = decode_attributes((0, 1, 1, 0, 1, NOT_ANNOTATED), Path("a.txt"), 3)
    assert raw == {"nuclear_chromatin": "open", "nuclear_shape": "irregular",
                   "nucleolus": "prominent", "cytoplasm": "scanty",
                   "cytoplasmic_basophilia": "intense"}
    assert mapped == {"chromatin_density": "loosely", "nucleus_shape": "irregular",
                      "nuclear_cytoplasmic_ratio": "high", "cytoplasm_colour": "blue"}
    assert vocab.check_attributes(mapped) == []
    # a regular nucleus and the nucleolus have no counterpart: raw only
    raw, mapped = decode_attributes((1, 0, 0, 1, 0, 0), Path("a.txt"), 1)
    assert raw["nuclear_shape"] == "regular" and "nucleus_shape" not in mapped
    assert mapped["cytoplasm_vacuole"] == "no" and mapped["chromatin_density"] == "densely"
    with pytest.raises(DataError, match=r"a\.txt:5: attribute a3 \(nucleolus\) is 2"):
        decode_attributes((0, 0, 2, 0, 0, 0), Path("a.txt"), 5)


def _write_one(root: Path, rows: str) -> Path:
    from dataset_adapters import _examples as ex

    (root / "classes.txt").write_text("\n".join(DEFAULT_NAMES) + "\n")
    ex.write_smear(root / "images" / "train" / "a.jpg", 100, 80, [(10, 10, 50, 50)], ["wbc"])
    label = root / "labels" / "train" / "a.txt"
    label.parent.mkdir(parents=True)
    label.write_text(rows)
    return label


def test_single_cell_image_gets_morphology_report_and_questions(tmp_path):
    _write_one(tmp_path, "1 0.3 0.375 0.4 0.5 0 1 0 0 1 1\n")
    (s,) = LeukemiaAttri(tmp_path).load("train")
    assert s.box_labels == ["myeloblast"]
    assert s.boxes.tolist() == [[10.0, 10.0, 50.0, 50.0]]
    assert s.attributes == s.box_attributes[0] == {
        "chromatin_density": "loosely", "nucleus_shape": "irregular",
        "nuclear_cytoplasmic_ratio": "high", "cytoplasm_colour": "blue",
        "cytoplasm_vacuole": "yes"}
    assert s.report.startswith("A myeloblast with an irregular nucleus")
    assert set(s.tasks()) == {"detect", "morphology", "mlm", "vqa"}
    qa = {(q.qtype, q.question): q.answer for q in s.qa}
    assert qa[("count", "How many myeloblasts are in the image?")] == "1"
    assert qa[("type", "What type of white blood cell is this?")] == "myeloblast"
    assert qa[("attribute", "What is the chromatin density of the white blood cell?")] \
        == "loosely"
    assert s.meta["cell_attributes"][0]["nucleolus"] == "inconspicuous"


def test_two_cells_give_no_single_cell_attributes(tmp_path):
    _write_one(tmp_path, "3 0.3 0.375 0.4 0.5 4 4 4 4 4 4\n12 0.7 0.5 0.2 0.2 0 0 0 0 0 0\n")
    (s,) = LeukemiaAttri(tmp_path).load("train")
    assert s.box_labels == ["neutrophil", "eosinophil"]
    assert s.attributes is None and s.box_attributes[0] == {}
    assert [q.qtype for q in s.qa] == ["count", "count"]
    assert s.report.count(".") == 2


def test_bad_lines_are_named(tmp_path):
    label = _write_one(tmp_path, "1 0.3 0.375 0.4 0.5 0 1 0 0 1\n")
    with pytest.raises(DataError, match=r"a\.txt:1: .*expected 11 fields"):
        LeukemiaAttri(tmp_path).load("train")
    for rows, reason in (("1 0.3 0.375 0.4 0.5 0 7 0 0 1 1\n", "attribute a2"),
                         ("14 0.3 0.375 0.4 0.5 0 0 0 0 0 0\n", "class index 14"),
                         ("1 0.9 0.375 0.4 0.5 0 0 0 0 0 0\n", "outside")):
        label.write_text(rows)
        adapter = LeukemiaAttri(tmp_path, on_error="skip")
        assert adapter.load("train") == []
        (p,) = adapter.problems
        assert p.file == str(label) and p.line == 1 and reason in p.reason
