"""tools/compare_specialists.py: the comparison table, the docs section, and a tiny real run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from unihema.config.loader import load_config

REPO = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location(
        "compare_specialists", REPO / "tools" / "compare_specialists.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rows_compare_each_task_with_its_specialist_and_judge_the_bars():
    tool = _tool()
    cfg = load_config(str(REPO / "configs" / "compare" / "unified.yaml"), [])
    results = {
        "unified": {"detect": {"bccd": {"mAP50": 0.72, "mAP": 0.4}},
                    "segment": {"wbc_seg_zheng": {"mean_dice_fg": 0.79}}},
        "detector": {"detect": {"bccd": {"mAP50": 0.80, "mAP": 0.5}}},
        "segmenter": {"segment": {"wbc_seg_zheng": {"mean_dice_fg": 0.70}}},
    }
    rows = {(r[0], r[2]): r for r in tool.comparison_rows(results, cfg)[1:]}
    det = rows[("detect", "mAP@0.5")]
    assert det[3:6] == ["0.720", "0.800 (detector)", "-0.080"]
    assert det[6] == ">= 0.70: met; within 0.05: missed"
    seg = rows[("segment", "mean foreground Dice")]
    assert seg[5] == "+0.090" and seg[6] == ">= 0.80: missed; within 0.05: met"
    assert ("classify", "accuracy") not in rows  # neither model has numbers for it


def test_docs_section_is_replaced_between_markers(tmp_path):
    tool = _tool()
    doc = tmp_path / "bench.md"
    doc.write_text(f"# B\n\nintro\n\n{tool.BEGIN}\nold table\n{tool.END}\n\nafter\n")
    tool.write_docs(doc, "new table\n")
    text = doc.read_text()
    assert "old table" not in text and "new table" in text
    assert text.startswith("# B\n\nintro") and text.rstrip().endswith("after")
    fresh = tmp_path / "fresh.md"
    tool.write_docs(fresh, "t")
    assert tool.BEGIN in fresh.read_text()


def test_tiny_comparison_end_to_end(shared_datasets, tmp_path, tiny):
    """Every model for a few steps on the real data (small images): trained, scored with the
    same evaluators, results.json, comparison.md and the docs section written; a second call
    reuses the finished models."""
    tool = _tool()
    out = tmp_path / "cmp"
    root = shared_datasets
    args = ["--minutes", "0", "--out", str(out), "--docs", str(tmp_path / "b.md"),
            "train.max_steps=2", "train.warmup_steps=1", "data.image_size=96",
            "data.batch_size=2", "data.task_batch_size.segment=2",
            "data.task_batch_size.classify=2", "train.log_every=1",
            *[f"data.{s}.{i}.root={root / d}" for s, i, d in (
                ("train", 0, "BCCD"), ("train", 1, "BCCD"), ("train", 2, "WBC-Seg-Zheng"),
                ("train", 3, "WBC-Seg-Zheng"), ("test", 0, "BCCD"), ("test", 1, "WBC-Seg-Zheng"))],
            *[t for t in tiny if not t.startswith("data.")]]
    assert tool.main(args + ["--limit", "4"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["models"]) == {"unified", "detector", "segmenter", "classifier"}
    assert set(results["models"]["unified"]) == {"detect", "segment", "classify"}
    assert "mAP50" in results["models"]["detector"]["detect"]["bccd"]
    assert results["runs"]["detector"]["steps"] == 2
    assert "mean foreground Dice" in (tmp_path / "b.md").read_text()
    before = (out / "detector" / "model.safetensors").stat().st_mtime_ns
    assert tool.main(args + ["--limit", "4", "--models", "detector"]) == 0
    assert (out / "detector" / "model.safetensors").stat().st_mtime_ns == before


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
