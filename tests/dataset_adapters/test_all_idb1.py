"""ALL-IDB1: blast centres become boxes; the _0/_1 name and the .xyc file must agree."""

from __future__ import annotations

import pytest

import dataset_adapters  # noqa: F401 - registers the adapters
from dataset_adapters.all_idb1 import AllIdb1
from unihema.data.catalog import DataError


def _all(adapter):
    return {s.sample_id: s for split in AllIdb1.splits for s in adapter.load(split)}


def test_blasts_and_blast_free_images(tmp_path):
    AllIdb1.write_example(tmp_path)
    samples = _all(AllIdb1(tmp_path))
    assert samples["Im001_1"].box_labels == ["lymphoblast", "lymphoblast"]
    assert len(samples["Im001_1"].meta["points"]) == 2
    assert samples["Im003_0"].boxes.shape == (0, 4)  # annotated: no blast
    assert samples["Im003_0"].tasks() == ["detect"]


def test_missing_and_contradicting_centre_files(tmp_path):
    AllIdb1.write_example(tmp_path)
    (tmp_path / "xyc" / "Im001_1.xyc").unlink()
    (tmp_path / "xyc" / "Im003_0.xyc").write_text("10 10\n")
    (tmp_path / "xyc" / "Im002_1.xyc").write_text("10 10\n20\n")
    with pytest.raises(DataError, match="Im00"):
        _all(AllIdb1(tmp_path))
    adapter = AllIdb1(tmp_path, on_error="skip")
    samples = _all(adapter)
    assert not {"Im001_1", "Im002_1", "Im003_0"} & set(samples)
    by_file = {p.file.rsplit("/", 1)[-1]: p for p in adapter.problems}
    assert "no centre file" in by_file["Im001_1.jpg"].reason
    assert "named _0" in by_file["Im003_0.xyc"].reason
    assert by_file["Im002_1.xyc"].line == 2
