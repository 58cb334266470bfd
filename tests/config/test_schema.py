"""The schema's extensible name sets: task names a config may use, without importing tasks."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import Annotated, Dict, List

import pytest

from unihema.config import ConfigError, load_config, schema_table
from unihema.config.loader import from_dict
from unihema.config.schema import TASK_NAMES, NameSet, TaskName, opt
from unihema.data.sample import TASKS

COLOURS = NameSet("colour", ("red", "blue"))


@dataclass
class Palette:
    """A toy section whose fields take names of :data:`COLOURS`."""

    main: Annotated[str, COLOURS] = opt("red", "the main colour")
    weights: Dict[Annotated[str, COLOURS], float] = opt(help="weight per colour", factory=dict)


def test_task_names_start_as_the_built_in_tasks():
    assert TASK_NAMES.names()[:len(TASKS)] == list(TASKS)
    assert TaskName.__metadata__ == (TASK_NAMES,)


def test_the_config_layer_validates_task_names_without_importing_tasks():
    code = ("import sys; from unihema.config import load_config; "
            "cfg = load_config(None, ['model.tasks=[detect, vqa]']); "
            "assert cfg.model.tasks == ['detect', 'vqa']; "
            "assert 'unihema.tasks' not in sys.modules, 'config imported the tasks'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_name_set_field_takes_its_names_as_they_are_added():
    assert from_dict(Palette, {"main": "blue", "weights": {"red": 2}}).weights == {"red": 2.0}
    with pytest.raises(ConfigError, match=r"main: expected one of \['red', 'blue'\], got "
                                          r"'green'"):
        from_dict(Palette, {"main": "green"})
    COLOURS.add("green")
    try:
        assert from_dict(Palette, {"main": "green", "weights": {"green": 1}}).main == "green"
        assert ("main", "'red' | 'blue' | 'green'") in [r[:2] for r in schema_table(Palette)]
    finally:
        COLOURS.discard("green")
    with pytest.raises(ConfigError, match="weights.green: expected one of"):
        from_dict(Palette, {"weights": {"green": 1}})
    with pytest.raises(ConfigError, match="main: expected str, got int 3"):
        from_dict(Palette, {"main": 3})


def test_a_misspelt_task_name_is_named_with_the_closest_one():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["model.tasks=[detect, classfy]"])
    assert "model.tasks.1: expected one of ['detect', 'classify'" in str(err.value)
    assert "did you mean 'classify'?" in str(err.value)


def test_name_sets_reject_empty_names():
    with pytest.raises(ValueError, match="non-empty string"):
        NameSet("task", ()).add("")
    names: List[str] = list(NameSet("task", ("a", "b", "a")))
    assert names == ["a", "b"]
