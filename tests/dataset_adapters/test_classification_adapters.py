"""Folder-per-class classification adapters: label maps, reported strays, splits, masks."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataset_adapters._classification import label_lookup, split_keys
from dataset_adapters.all_idb2 import AllIdb2
from dataset_adapters.bccd_wbc import BccdWbc
from dataset_adapters.cnmc_2019 import Cnmc2019, patient_of
from dataset_adapters.lisc import Lisc
from dataset_adapters.nih_malaria_cells import NihMalariaCells, slide_of
from dataset_adapters.pbc_8_da import Pbc8Da
from dataset_adapters.pbc_acevedo import PbcAcevedo
from dataset_adapters.raabin_wbc import RaabinWbc
from dataset_adapters.thalassemia_pbs import ThalassemiaPbs
from unihema.data.catalog import DataError


def _all(adapter):
    return [s for split in adapter.splits for s in adapter.load(split)]


def test_thalassemia_pencil_and_elliptocyte_share_a_term(tmp_path):
    ThalassemiaPbs.write_example(tmp_path)
    samples = _all(ThalassemiaPbs(tmp_path))
    raw = {s.meta["raw_label"] for s in samples if s.label == "elliptocyte"}
    assert raw == {"elliptocyte", "pencil"}
    assert len(ThalassemiaPbs.classes["classify"]) == 8
    assert {s.label for s in samples if s.meta["raw_label"] == "normal"} == {"red blood cell"}


def test_unknown_folder_and_stray_image_are_reported(tmp_path):
    PbcAcevedo.write_example(tmp_path)
    base = tmp_path / "PBC_dataset_normal_DIB"
    (base / "smudge").mkdir()
    for name in ("a.jpg", "b.jpg"):
        (base / "smudge" / name).write_bytes((base / "ig" / "MY_100.jpg").read_bytes())
    (base / "loose.jpg").write_bytes((base / "ig" / "MY_100.jpg").read_bytes())
    (base / "ig" / "notes.txt").write_text("not an image")  # other files are not samples
    with pytest.raises(DataError, match=r"loose\.jpg: image lies outside any class folder"):
        PbcAcevedo(tmp_path).load("train")
    adapter = PbcAcevedo(tmp_path, on_error="skip")
    assert len(_all(adapter)) == 16
    problems = [str(p) for p in adapter.problems]
    assert any("unknown class folder 'smudge' (2 images not read); expected one of: basophil"
               in p for p in problems)


def test_truncated_image_is_reported_not_loaded(tmp_path):
    AllIdb2.write_example(tmp_path)
    bad = tmp_path / "Im001_1.tif"
    bad.write_bytes(b"II*\x00garbage")
    (tmp_path / "Im011.tif").write_bytes(b"")
    adapter = AllIdb2(tmp_path, on_error="skip")
    assert len(_all(adapter)) == 9
    problems = sorted(str(p) for p in adapter.problems)
    assert any("Im011.tif: file name is not Im<nnn>_<y>.tif" in p for p in problems)
    assert any("Im001_1.tif" in p and "cannot" in p for p in problems)


def test_nih_slide_groups_never_straddle_splits(tmp_path):
    assert slide_of(Path("C100P61ThinF_IMG_20150918_144104_cell_162.png")) == "C100P61"
    assert slide_of(Path("C1_thinF_IMG_20150604_104722_cell_9.png")) == "C1"
    assert slide_of(Path("other.png")) is None
    NihMalariaCells.write_example(tmp_path)
    samples = _all(NihMalariaCells(tmp_path))
    assert len(samples) == 9
    splits = {}
    for s in samples:
        splits.setdefault(s.patient_id, set()).add(s.split)
    assert all(len(v) == 1 for v in splits.values())
    assert {s.label for s in samples} == {"infected red blood cell", "red blood cell"}


def test_label_map_collisions_are_programming_errors():
    assert label_lookup({"Pencil": "elliptocyte", "PENCIL": "elliptocyte"}) == {
        "pencil": "elliptocyte"}
    with pytest.raises(ValueError, match="normalising to 'neut' map to 'neutrophil' and"):
        label_lookup({"Neut": "neutrophil", "neut": "monocyte"})
    with pytest.raises(ValueError, match="not a canonical term"):
        label_lookup({"x": "neutrofil"})


def test_seeded_split_is_order_independent():
    keys = [f"k{i}" for i in range(50)]
    a = split_keys(keys)
    b = split_keys(list(reversed(keys)))
    assert a == b and set(a.values()) == {"train", "val", "test"}


def test_official_split_folders(tmp_path):
    RaabinWbc.write_example(tmp_path)
    (tmp_path / "TestB").rename(tmp_path / "testb")  # case-insensitive split folders
    assert len(RaabinWbc(tmp_path).load("test_b")) == 5
    (tmp_path / "testb").rename(tmp_path / "other")
    with pytest.raises(DataError, match="split folder 'TestB' not found"):
        RaabinWbc(tmp_path).load("test_b")
    BccdWbc.write_example(tmp_path / "bccd")
    (s, *_) = BccdWbc(tmp_path / "bccd").load("test")
    assert s.meta["source_image"] == "0" and s.label == "eosinophil"


def test_cnmc_folds_patients_and_test_table(tmp_path):
    assert patient_of("UID_H10_43_1_hem.bmp") == "H10" and patient_of("x.bmp") is None
    counts = Cnmc2019.write_example(tmp_path)
    adapter = Cnmc2019(tmp_path)
    train = adapter.load("train")
    assert len(train) == counts["train"] == counts["fold_0"] + counts["fold_1"]
    assert {s.meta["fold"] for s in train} == {"fold_0", "fold_1"}
    assert {s.label for s in adapter.load("fold_2")} == {"lymphoblast", "lymphocyte"}
    test = {s.sample_id: s for s in adapter.load("test")}
    assert test["2"].label == "lymphocyte" and test["2"].patient_id == "H7"
    table = tmp_path / "C-NMC_test_prelim_phase_data" / \
        "C-NMC_test_prelim_phase_data_labels.csv"
    table.write_text(table.read_text() + "UID_1_1_1_all.bmp,9.bmp,1\nUID_1_1_2_all.bmp,1.bmp,2\n")
    with pytest.raises(DataError, match=r"labels\.csv:5: image '9\.bmp' listed here is missing"):
        Cnmc2019(tmp_path).load("test")
    adapter = Cnmc2019(tmp_path, on_error="skip")
    assert len(adapter.load("test")) == 3
    assert [p.line for p in adapter.problems] == [5, 6]


def test_lisc_masks_and_mixed_folder(tmp_path):
    counts = Lisc.write_example(tmp_path)
    samples = _all(Lisc(tmp_path))
    assert len(samples) == sum(counts.values())  # mixt/ is not read, and not a problem
    with_mask = [s for s in samples if s.mask_path]
    assert len(with_mask) == 5 and all("areaforexpert1" in s.mask_path for s in with_mask)
    assert with_mask[0].mask_values == {0: "background", 128: "cytoplasm", 255: "nucleus"}


def test_pbc_8_da_domain_level(tmp_path):
    Pbc8Da.write_example(tmp_path)
    samples = _all(Pbc8Da(tmp_path))
    assert {s.meta["domain"] for s in samples} == {"source", "target"}
    assert len({s.label for s in samples}) == 8
