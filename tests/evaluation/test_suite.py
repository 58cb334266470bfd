"""Suite files: validation, defaults and the dataset keys of the reports."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from unihema.config.loader import ConfigError
from unihema.evaluation.runner import subset_indices
from unihema.evaluation.suite import SuiteEntry, entry_keys, load_suite

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def entry(task, root, **kw):
    return {"dataset": "synthetic_smear", "root": str(root), "split": "test", "task": task, **kw}


# ----------------------------------------------------------------------------- suite files
def test_shipped_suites_are_valid():
    from unihema.synth import WHITE_TYPES

    demo = load_suite(REPO / "configs/eval/demo.yaml")
    assert demo.name == "demo"
    assert {e.task for e in demo.entries} == {"detect", "classify", "segment", "morphology",
                                              "vqa", "mlm"}
    assert {e.root for e in demo.entries} == {"runs/demo/data"}
    classify = [e for e in demo.entries if e.task == "classify"][0]
    assert classify.options["restrict_to"] == list(WHITE_TYPES)
    assert all(e.shuffled for e in demo.entries if e.task in ("vqa", "mlm"))
    real = load_suite(REPO / "configs/eval/real.yaml")
    assert [(e.dataset, e.task) for e in real.entries] == [
        ("bccd", "detect"), ("wbc_seg_zheng", "segment"), ("wbc_seg_zheng", "classify"),
        ("chula_rbc12", "detect"), ("chula_rbc12", "classify"),
        *[(d, t) for d in ("bccd", "wbc_seg_zheng", "chula_rbc12") for t in ("vqa", "mlm")]]
    assert all(e.derive_text and e.limit == 60 for e in real.entries if e.task in ("vqa", "mlm"))
    cross = load_suite(REPO / "configs/eval/cross_zheng.yaml")
    assert sorted({(e.split, e.where) for e in cross.entries}) == [
        (s, (("subset", f"Dataset {d}"),)) for s in ("all", "test") for d in (1, 2)]


@pytest.mark.parametrize("data, message", [
    ({"nmae": "x", "entries": [entry("detect", ".")]}, r"unknown key 'nmae' \(did you mean 'name'"),
    ({"entries": [entry("detect", ".", shufled=True)]}, r"entries\[0\]: unknown key 'shufled'"),
    ({"entries": [{"dataset": "synthetic_smear", "root": "."}]}, "'task' is required"),
    ({"entries": [entry("detection", ".")]}, "unknown task 'detection'"),
    ({"entries": [entry("detect", ".", shuffled=True)]}, "'shuffled' applies to mlm and vqa"),
    ({"entries": [entry("classify", ".", options={"restrict_to": "monocyte"})]},
     "bad options for the classify evaluator"),
    ({"entries": [entry("detect", ".", options={"max_detections": 5})]}, "max_detections"),
    ({"entries": []}, "'entries' must be a non-empty list"),
    ({"limit": 0, "entries": [entry("detect", ".")]}, "limit: expected an integer >= 1"),
    ({"entries": [entry("vqa", ".", classes=["a"])]}, "'classes' must map a task"),
    ({"entries": [entry("segment", ".", candidates=["nucleus"])]},
     "'candidates' applies to detect and classify"),
    ({"entries": [entry("classify", ".", candidates="monocyte")]},
     "'candidates' must be a list"),
    ({"entries": [entry("classify", ".", candidates=["a", "a"])]}, "lists a class twice"),
    ({"entries": [entry("vqa", ".", derive_text="yes")]}, "'derive_text' must be true or false"),
    ({"entries": [entry("classify", ".", where=["Dataset 1"])]}, "'where' must map metadata"),
])
def test_suite_validation_errors(tmp_path, data, message):
    path = write(tmp_path / "bad.yaml", data)
    with pytest.raises(ConfigError, match=message) as info:
        load_suite(path)
    assert str(path) in str(info.value)


def test_suite_defaults_and_all_problems_at_once(tmp_path):
    s = load_suite(write(tmp_path / "mine.yaml", {"entries": [entry("vqa", ".", shuffled=True)]}))
    assert s.name == "mine" and s.batch_size == 16 and s.limit is None and s.image_size is None
    assert s.entries[0] == SuiteEntry(dataset="synthetic_smear", root=".", task="vqa",
                                      shuffled=True)
    bad = write(tmp_path / "bad.yaml", {"colour": 1, "entries": [entry("x", "."), 3]})
    with pytest.raises(ConfigError, match="3 problem") as info:
        load_suite(bad)
    for part in ("colour", "entries[0]", "entries[1]"):
        assert part in str(info.value)


def test_entry_keys_and_subsets():
    e = [SuiteEntry("a", ".", "detect"), SuiteEntry("a", ".", "detect", split="val"),
         SuiteEntry("a", ".", "classify"), SuiteEntry("a", ".", "detect", split="val")]
    assert entry_keys(e) == ["a/test", "a/val", "a", "a/val#2"]
    one, two = (SuiteEntry("z", ".", "classify", where=(("subset", f"Dataset {i}"),))
                for i in (1, 2))
    assert entry_keys([one, two]) == ["z[subset=Dataset 1]", "z[subset=Dataset 2]"]
    assert two.label == "z/test[subset=Dataset 2]:classify"
    assert subset_indices(10, None) is None and subset_indices(3, 5) is None
    assert subset_indices(10, 3) == [0, 4, 9]  # evenly spread, like the runner
