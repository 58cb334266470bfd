"""Bad-input corpus for configs and `unihema data check` (issue 18, items 7 and 8).

Each row is one mistake a user makes; the test asserts the outcome: a clear error naming the
key path (or file and line) and the reason, or, for `data check`, the exit status and a report
line naming the file(s) and line. Data-check cases are tiny datasets built in ``tmp_path`` from
the adapters' own examples (``unihema data example``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from unihema.cli import main
from unihema.config.loader import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------ config ranges
RANGE_CASES = [
    # (override, the error line it must produce)
    ("train.lr=-0.001", "train.lr: -0.001 is outside the allowed range [0.0, 1.0]"),
    ("train.lr=3", "train.lr: 3.0 is outside the allowed range [0.0, 1.0]"),
    ("train.weight_decay=-0.05", "train.weight_decay: -0.05 is outside the allowed range"),
    ("train.grad_clip=-1", "train.grad_clip: -1.0 is outside the allowed range [0.0, inf)"),
    ("train.max_steps=50",
     "train.warmup_steps: 100 is more than train.max_steps (50); expected at most "
     "train.max_steps"),
    ("train.log_every=0", "train.log_every: 0 is outside the allowed range [1, 1000000000]"),
    ("train.seed=-1", "train.seed: -1 is outside the allowed range"),
    ("data.batch_size=0", "data.batch_size: 0 is outside the allowed range [1, 1000000]"),
    ("data.num_workers=-2", "data.num_workers: -2 is outside the allowed range [0, 4096]"),
    ("data.augment.hflip=1.5", "data.augment.hflip: 1.5 is outside the allowed range [0.0, 1.0]"),
    ("data.augment.hue=0.9", "data.augment.hue: 0.9 is outside the allowed range [0.0, 0.5]"),
    ("data.balance={classify: 2}",
     "data.balance.classify: 2.0 is outside the allowed range [0.0, 1.0]"),
    ("data.task_batch_size={classify: 0}",
     "data.task_batch_size.classify: 0 is outside the allowed range"),
    ("data.train=[{name: bccd, weight: -1}]",
     "data.train.0.weight: -1.0 is outside the allowed range [0.0, inf)"),
    ("train.loss_weights={loss_vqa_ce: -1}",
     "train.loss_weights.loss_vqa_ce: -1.0 is outside the allowed range [0.0, inf)"),
    ("synth.train=-5", "synth.train: -5 is outside the allowed range [0, inf)"),
    ("model.heads.detect_score_threshold=1.2",
     "model.heads.detect_score_threshold: 1.2 is outside the allowed range [0.0, 1.0]"),
    ("train.lr=.nan", "train.lr: nan is outside the allowed range"),
]


@pytest.mark.parametrize("override, expected", RANGE_CASES, ids=[c[0] for c in RANGE_CASES])
def test_out_of_range_value_is_rejected_with_key_path(override, expected):
    with pytest.raises(ConfigError) as err:
        load_config(str(REPO / "configs" / "synthetic.yaml"), [override])
    assert expected in str(err.value)
    assert "configs/synthetic.yaml" in str(err.value)  # the file the values came from


def test_bounds_still_accept_their_edges():
    cfg = load_config(None, ["train.lr=0", "train.grad_clip=0", "train.max_steps=5",
                             "train.warmup_steps=5", "data.balance={classify: 1.0}",
                             "data.augment.hue=0.5"])
    assert (cfg.train.warmup_steps, cfg.train.max_steps) == (5, 5)


# ------------------------------------------------------------------------ duplicate YAML keys
DUPLICATE_CASES = [
    # (file text, line of the repeat, key, line of the first)
    ("train:\n  lr: 0.001\n  max_steps: 50\n  lr: 0.1\n", 4, "lr", 2),
    ("train:\n  lr: 0.001\nname: x\ntrain:\n  max_steps: 5\n", 4, "train", 1),
    ("data:\n  augment: {hflip: 0.5, vflip: 0.5, hflip: 0.0}\n", 2, "hflip", 2),
    ("_base_: a.yaml\n_base_: b.yaml\n", 2, "_base_", 1),
]


@pytest.mark.parametrize("text, line, key, first", DUPLICATE_CASES,
                         ids=["nested", "section", "flow", "base"])
def test_duplicate_yaml_key_names_file_line_and_key(tmp_path, text, line, key, first):
    path = tmp_path / "dup.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"{path}:{line}: duplicate key '{key}' (first written at line {first})" in str(
        err.value)


def test_duplicate_key_in_a_base_file_names_the_base(tmp_path):
    (tmp_path / "base.yaml").write_text("train:\n  lr: 0.1\n  lr: 0.2\n", encoding="utf-8")
    top = tmp_path / "top.yaml"
    top.write_text("_base_: base.yaml\nname: x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'base.yaml'}:3: duplicate "
                                                    f"key 'lr'")):
        load_config(top)


def test_duplicate_key_in_an_override_value_is_rejected():
    with pytest.raises(ConfigError, match="override 'data.balance=.*duplicate key 'classify'"):
        load_config(None, ["data.balance={classify: 0.5, classify: 1.0}"])


def test_yaml_merge_keys_may_still_override():
    """``<<: *anchor`` then a key is YAML's override idiom, not a duplicate."""
    from unihema.config.loader import load_yaml_text

    assert load_yaml_text("a: &x {b: 1}\nc:\n  <<: *x\n  b: 2\n") == {"a": {"b": 1},
                                                                      "c": {"b": 2}}


def test_cli_reports_a_bad_config_with_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("_base_: %s\ntrain:\n  lr: -1\n  grad_clip: -2\n"
                    % (REPO / "configs" / "synthetic.yaml"), encoding="utf-8")
    assert main(["config", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert "train.lr: -1.0 is outside" in err and "train.grad_clip: -2.0 is outside" in err



def test_duplicate_key_in_a_dataset_spec_names_spec_and_line(tmp_path, capsys):
    root = tmp_path / "mine"
    assert main(["data", "example", "generic", "--out", str(root)]) == 0
    spec = root / "unihema_dataset.yaml"
    spec.write_text(spec.read_text(encoding="utf-8") + "format: coco\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["data", "check", "generic", "--root", str(root), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{spec}: malformed YAML (line 7: duplicate key 'format' (first written at line 1" in err


# ------------------------------------------------------------------------------ data check
def _bccd(root: Path) -> Path:
    from dataset_adapters.bccd import BCCD

    BCCD.write_example(root)
    return root / "BCCD"


def _generic(root: Path) -> Path:
    from dataset_adapters.generic import GenericAdapter

    GenericAdapter.write_example(root)
    return root


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def _sub(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _copy_as(src: Path, dst: Path) -> None:
    dst.write_bytes(src.read_bytes())


# (adapter, dataset maker, edit(base), exit status, lines the report must hold; {b} = base)
CHECK_CASES = {
    "bccd-size-mismatch": (
        "bccd", _bccd,
        lambda b: _sub(b / "Annotations/BloodImage_00001.xml", "<width>128</width>",
                       "<width>640</width>"),
        1, ["{b}/Annotations/BloodImage_00001.xml: <size>: says 640x96 but the image "
            "{b}/JPEGImages/BloodImage_00001.jpg is 128x96"]),
    "generic-size-mismatch": (
        "generic", _generic,
        lambda b: _sub(b / "annotations/smear_03.xml", "<height>72</height>",
                       "<height>480</height>"),
        1, ["{b}/annotations/smear_03.xml: <size>: says 96x480 but the image "
            "{b}/images/smear_03.png is 96x72"]),
    "bccd-listed-id-without-image": (
        "bccd", _bccd,
        lambda b: _append(b / "ImageSets/Main/val.txt", "\nBloodImage_00099\n"),
        1, ["{b}/ImageSets/Main/val.txt:3: id 'BloodImage_00099' names no image "
            "({b}/JPEGImages/BloodImage_00099.jpg not found)"]),
    "generic-listed-id-without-image": (
        "generic", _generic, lambda b: _append(b / "splits/train.txt", "smear_99\n"),
        1, ["{b}/splits/train.txt:3: id 'smear_99' names no image (looked for images: "
            "images/*.png under {b})"]),
    "bccd-id-listed-twice": (
        "bccd", _bccd, lambda b: _append(b / "ImageSets/Main/train.txt", "BloodImage_00001\n"),
        1, ["{b}/ImageSets/Main/train.txt:3: id 'BloodImage_00001' is listed twice (first at "
            "line 1)"]),
    "generic-id-listed-twice": (
        "generic", _generic, lambda b: _append(b / "splits/val.txt", "smear_03\n"),
        1, ["{b}/splits/val.txt:2: id 'smear_03' is listed twice (first at line 1)"]),
    "bccd-image-in-no-split": (
        "bccd", _bccd,
        lambda b: [_copy_as(b / f"{d}/BloodImage_00001.{e}", b / f"{d}/BloodImage_00042.{e}")
                   for d, e in (("JPEGImages", "jpg"), ("Annotations", "xml"))],
        0, ["{b}/JPEGImages/BloodImage_00042.jpg: image is in no split: 'BloodImage_00042' is "
            "not listed in train.txt, val.txt, test.txt in {b}/ImageSets/Main",
            "no problems found"]),
    "generic-image-in-no-split": (
        "generic", _generic,
        lambda b: _copy_as(b / "images/smear_01.png", b / "images/smear_42.png"),
        0, ["{b}/images/smear_42.png: image is in no split: 'images/smear_42' "
            "is not listed in train.txt, val.txt, test.txt in {b}/splits",
            "no problems found"]),
    "bccd-empty-split": (
        "bccd", _bccd, lambda b: (b / "ImageSets/Main/test.txt").write_text("\n\n"),
        1, ["{b}/ImageSets/Main/test.txt: lists no image id: its split is empty",
            "split 'test' is empty: no sample loaded",
            "{b}/JPEGImages/BloodImage_00005.jpg: image is in no split"]),
    "generic-empty-split": (
        "generic", _generic, lambda b: (b / "splits/test.txt").write_text(""),
        1, ["{b}/splits/test.txt: lists no image id: its split is empty",
            "{b}: split 'test' is empty: no sample loaded"]),
    "generic-split-list-missing": (
        "generic", _generic, lambda b: (b / "splits/val.txt").unlink(),
        1, ["{b}: split list {b}/splits/val.txt is missing"]),
    "generic-seeded-split-left-empty": (
        "generic", _generic,
        lambda b: _sub(b / "unihema_dataset.yaml", "splits:\n  files: {train: splits/train.txt, "
                       "val: splits/val.txt, test: splits/test.txt}",
                       "splits: {seeded: {fractions: {train: 0.9, val: 0.1}}}"),
        1, ["{b}: split 'val' is empty: no sample loaded"]),
    "bccd-split-list-with-crlf-and-blank-lines": (
        "bccd", _bccd,
        lambda b: (b / "ImageSets/Main/train.txt").write_bytes(
            b"BloodImage_00001\r\n\r\n  BloodImage_00002  \r\n"),
        0, ["[train] 2 samples", "no problems found"]),
    "generic-voc-without-size": (
        "generic", _generic,
        lambda b: _sub(b / "annotations/smear_01.xml", "<width>96</width>", "<width>0</width>"),
        0, ["no problems found"]),
}


@pytest.mark.parametrize("case", list(CHECK_CASES))
@pytest.mark.parametrize("fast", [False, True], ids=["decode", "fast"])
def test_data_check_reports_with_file_line_and_exit_status(case, fast, tmp_path, capsys):
    key, make, edit, code, lines = CHECK_CASES[case]
    base = make(tmp_path / "ds")
    edit(base)
    capsys.readouterr()
    args = ["data", "check", key, "--root", str(tmp_path / "ds"), "--no-progress",
            "--no-duplicates"] + (["--fast"] if fast else [])
    assert main(args) == code
    out = capsys.readouterr().out
    for line in lines:
        assert line.format(b=base) in out, f"{line.format(b=base)!r} not in:\n{out}"


def test_real_bccd_reports_what_it_has(shared_datasets):
    """The real BCCD: 364 images, all 640x480 as their <size> says, each in one list."""
    from unihema.data.check import check_dataset

    report = check_dataset("bccd", shared_datasets / "BCCD", fast=True, progress=False,
                           duplicates=False)
    assert report.ok and report.dataset_notes == []
    assert sum(s.summary["samples"] for s in report.splits) == 364
