"""NLM thick smears: the annotation line format, shapes to boxes, patient-aware splits."""

from __future__ import annotations

import pytest

import dataset_adapters  # noqa: F401 - registers the adapters
from dataset_adapters.nlm_thick_pf import NlmThickPf, object_box, read_nlm_annotation
from dataset_adapters.nlm_thick_pv import NlmThickPv
from unihema.data.catalog import DataError


def test_read_annotation_and_shapes(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("3,200,150\n0,Parasite,,Circle,2,50,60,50,70\n"
                 "1,White_Blood_Cell,,Point,1,100,100\n2,Parasite,,Polygon,3,10,10,30,10,20,40\n")
    header, objs = read_nlm_annotation(f)
    assert header == (3, 200, 150) and [o.line for o in objs] == [2, 3, 4]
    assert object_box(objs[0], 40) == ((40.0, 50.0, 60.0, 70.0), (50.0, 60.0))
    assert object_box(objs[1], 110)[0] == (45.0, 45.0, 155.0, 155.0)
    assert object_box(objs[2], 40)[0] == (10.0, 10.0, 30.0, 40.0)
    for bad, msg in (("0,Parasite,,Point,2,1,2\n", "says 2 points"),
                     ("0,Parasite,,Blob,1,1,2\n", "unknown shape"),
                     ("0,Parasite,,Point,1,x,2\n", "number"),
                     ("0,Parasite,Point\n", "expected")):
        f.write_text(bad)
        with pytest.raises(DataError, match=rf"a\.txt:1: .*{msg}"):
            read_nlm_annotation(f)


def test_example_patients_never_span_splits_and_species_labels(tmp_path):
    for cls in (NlmThickPf, NlmThickPv):
        root = tmp_path / cls.name
        cls.write_example(root)
        samples = [s for split in cls.splits for s in cls(root).load(split)]
        split_of = {}
        for s in samples:
            assert split_of.setdefault(s.patient_id, s.split) == s.split
            assert s.box_labels[2] == "white blood cell"
            assert s.box_labels[0] == cls.classes["detect"][0]
            assert len(s.meta["points"]) == 3


def test_header_mismatch_and_unknown_type_are_reported(tmp_path):
    NlmThickPf.write_example(tmp_path)
    gts = sorted(tmp_path.glob("*/GT/*.txt"))
    lines = gts[0].read_text().splitlines()
    gts[0].write_text("\n".join(["9,200,150"] + lines[1:]) + "\n")
    body = gts[1].read_text().splitlines()[1:]  # without its (optional) header
    gts[1].write_text("\n".join(body + ["3,Platelet,,Point,1,5,5"]) + "\n")
    with pytest.raises(DataError, match="header says 9 objects"):
        [NlmThickPf(tmp_path).load(s) for s in NlmThickPf.splits]
    adapter = NlmThickPf(tmp_path, on_error="skip")
    n = sum(len(adapter.load(s)) for s in NlmThickPf.splits)
    assert n == len(gts) - 2
    by_file = {p.file: p for p in adapter.problems}
    assert by_file[str(gts[0])].line == 1
    assert "unknown label 'Platelet'" in by_file[str(gts[1])].reason
    assert by_file[str(gts[1])].line == 4
