import dataclasses
import textwrap

import pytest
import yaml

from unihema.config import (
    Config,
    ConfigError,
    dump_config,
    load_config,
    schema_table,
    to_dict,
)
from unihema.config.loader import apply_override, merge


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def test_defaults_are_valid_and_round_trip(tmp_path):
    cfg = load_config()
    assert isinstance(cfg, Config)
    assert cfg.synth.size == 256
    out = dump_config(cfg, tmp_path / "run")
    again = load_config(out)
    assert to_dict(again) == to_dict(cfg)


def test_base_inheritance_single_and_list(tmp_path):
    write(tmp_path / "a.yaml", """
        name: a
        train: {lr: 0.1, max_steps: 5, warmup_steps: 2}
        data: {augment: {hflip: 0.0}}
    """)
    write(tmp_path / "b.yaml", """
        train: {max_steps: 7}
        synth: {size: 64}
    """)
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "c.yaml", """
        _base_: [../a.yaml, ../b.yaml]
        name: c
        train: {weight_decay: 0.0}
    """)
    write(tmp_path / "d.yaml", "_base_: sub/c.yaml\nsynth: {seed: 3}\n")
    cfg = load_config(tmp_path / "d.yaml")
    assert cfg.name == "c"
    assert cfg.train.lr == 0.1  # from a
    assert cfg.train.max_steps == 7  # b overrides a (later base wins)
    assert cfg.train.weight_decay == 0.0  # c on top
    assert cfg.synth.size == 64 and cfg.synth.seed == 3
    assert cfg.data.augment.hflip == 0.0
    assert cfg.data.augment.vflip == 0.5  # untouched default


def test_delete_replaces_instead_of_merging(tmp_path):
    write(tmp_path / "a.yaml", "train: {loss_weights: {loss_detect_cls: 1.0, loss_vqa_ce: 2.0}}\n")
    write(tmp_path / "b.yaml", """
        _base_: a.yaml
        train: {loss_weights: {_delete_: true, loss_vqa_ce: 3.0}}
    """)
    assert load_config(tmp_path / "b.yaml").train.loss_weights == {"loss_vqa_ce": 3.0}
    write(tmp_path / "c.yaml", "_base_: a.yaml\ntrain: {loss_weights: {loss_vqa_ce: 3.0}}\n")
    assert load_config(tmp_path / "c.yaml").train.loss_weights == {
        "loss_detect_cls": 1.0, "loss_vqa_ce": 3.0}


def test_base_cycle_and_missing_base(tmp_path):
    write(tmp_path / "x.yaml", "_base_: y.yaml\n")
    write(tmp_path / "y.yaml", "_base_: x.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "x.yaml")
    write(tmp_path / "z.yaml", "_base_: nope.yaml\n")
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(tmp_path / "z.yaml")


def test_dotted_overrides():
    cfg = load_config(None, [
        "train.lr=3e-4",  # YAML 1.1 reads this as a string; the loader still takes it
        "data.augment.scale=[0.5, 2.0]",
        "data.train=[{name: synthetic_smear, root: /d, tasks: [detect, vqa]}]",
        "data.train.0.weight=2",
        "data.task_weights.vqa=3",
        "name=run one",
    ])
    assert cfg.train.lr == pytest.approx(3e-4)
    assert cfg.data.augment.scale == (0.5, 2.0)
    assert cfg.data.train[0].tasks == ["detect", "vqa"]
    assert cfg.data.train[0].weight == 2.0
    assert cfg.data.task_weights == {"vqa": 3.0}
    assert cfg.name == "run one"


def test_unknown_key_lists_valid_keys_and_suggests(tmp_path):
    write(tmp_path / "bad.yaml", "train: {lrate: 0.1}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "bad.yaml")
    msg = str(err.value)
    assert "bad.yaml" in msg
    assert "train.lrate: unknown key" in msg
    assert "did you mean 'lr'" in msg
    for key in ("output_dir", "max_steps", "weight_decay"):
        assert key in msg


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        load_config(None, [
            "synth.size=big", "data.augment.hflip=1.5", "data.on_error=ignore",
            "data.train=[{name: x, tasks: [detection]}]", "data.augment.scale=[2, 1]",
            "train.seed=true", "bogus=1",
        ])
    msg = str(err.value)
    assert "synth.size: expected int, got str 'big'" in msg
    assert "data.augment.hflip: 1.5 is outside the allowed range [0.0, 1.0]" in msg
    assert "data.on_error: expected one of ['raise', 'skip']" in msg
    assert "data.train.0.tasks.0: expected one of" in msg and "'detection'" in msg
    assert "data.augment.scale: expected (min, max) with min <= max" in msg
    assert "train.seed: expected int, got bool" in msg
    assert "bogus: unknown key" in msg


def test_bad_yaml_and_bad_overrides(tmp_path):
    write(tmp_path / "broken.yaml", "train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "broken.yaml")
    write(tmp_path / "list.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="key.path=value"):
        load_config(None, ["train.lr"])
    with pytest.raises(ConfigError, match="'name' is a value, not a section"):
        apply_override({"name": "x"}, "name.sub=1")
    with pytest.raises(ConfigError, match="name: expected str, got dict"):
        load_config(None, ["name.sub=1"])
    with pytest.raises(ConfigError, match="index 3 out of range"):
        apply_override({"a": [1, 2]}, "a.3=0")


def test_merge_does_not_mutate():
    base = {"a": {"b": 1, "c": 2}, "l": [1]}
    top = {"a": {"b": 5}, "l": [2, 3]}
    out = merge(base, top)
    assert out == {"a": {"b": 5, "c": 2}, "l": [2, 3]}
    assert base == {"a": {"b": 1, "c": 2}, "l": [1]}


def test_schema_has_help_for_every_key():
    rows = schema_table()
    keys = [r[0] for r in rows]
    assert "train.lr" in keys and "data.augment.hflip" in keys and "synth.domain" in keys
    assert all(r[3] for r in rows), [r[0] for r in rows if not r[3]]


def test_every_schema_field_declares_help():
    def walk(cls):
        for f in dataclasses.fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"
            if dataclasses.is_dataclass(f.type if not isinstance(f.type, str) else None):
                walk(f.type)

    walk(Config)


def test_repo_configs_are_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "configs"
    files = sorted(p for p in root.rglob("*.yaml") if not {"deepspeed", "eval"} & set(p.parts))
    assert files, "the repository ships configs"
    for path in files:
        load_config(path)  # raises on any invalid file


def test_repo_eval_suites_are_valid():
    """configs/eval/ holds evaluation suites, a format of their own (docs/evaluation.md)."""
    from pathlib import Path

    from unihema.evaluation.suite import load_suite

    suites = sorted((Path(__file__).resolve().parents[2] / "configs" / "eval").glob("*.yaml"))
    assert suites, "the repository ships evaluation suites"
    for path in suites:
        assert load_suite(path).entries, path


def test_dump_is_plain_yaml(tmp_path):
    cfg = load_config(None, ["data.augment.scale=[0.5,2.0]"])
    text = dump_config(cfg, tmp_path).read_text()
    data = yaml.safe_load(text)
    assert data["data"]["augment"]["scale"] == [0.5, 2.0]
    assert not list(tmp_path.glob(".*.tmp")), "no temp file left behind"
