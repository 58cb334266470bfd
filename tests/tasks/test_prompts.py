import random

import pytest

from unihema.tasks.prompts import PROMPTS, parse_classes, render, template_fields
from unihema.data.sample import TASKS

FIELDS = {
    "detect": {"classes": ["red blood cell", "platelet"]},
    "segment": {"classes": ["background", "nucleus", "cytoplasm"]},
    "classify": {"classes": ["lymphocyte", "monocyte"]},
    "morphology": {},
    "mlm": {"text": "This field shows <extra_id_0> red blood cells."},
    "vqa": {"question": "How many platelets are in the image?"},
}


def test_every_task_has_one_eval_and_several_train_templates():
    assert set(PROMPTS) == set(TASKS)
    for task, spec in PROMPTS.items():
        assert len(spec.train) >= 3, task
        assert spec.eval in spec.train, f"{task}: the eval wording is also trained on"
        for template in (spec.eval,) + spec.train:
            assert set(template_fields(template)) == set(spec.fields), (task, template)


@pytest.mark.parametrize("task", TASKS)
def test_render_eval_is_fixed_and_contains_the_fields(task):
    a = render(task, **FIELDS[task])
    assert a == render(task, **FIELDS[task])
    for value in FIELDS[task].values():
        parts = value if isinstance(value, list) else [value]
        for p in parts:
            assert p in a


def test_training_templates_vary_and_are_reproducible():
    seen = {render("vqa", rng=random.Random(s), **FIELDS["vqa"]) for s in range(50)}
    assert len(seen) == len(PROMPTS["vqa"].train)
    assert render("detect", rng=random.Random(3), **FIELDS["detect"]) == render(
        "detect", rng=random.Random(3), **FIELDS["detect"])


def test_class_list_round_trips():
    text = render("detect", classes=["red blood cell", "ring form", "white blood cell"])
    assert parse_classes(text.split(": ", 1)[1]) == ["red blood cell", "ring form",
                                                     "white blood cell"]


def test_render_errors_name_the_problem():
    with pytest.raises(KeyError, match="unknown task 'count'"):
        render("count")
    with pytest.raises(ValueError, match=r"missing \['classes'\]"):
        render("detect")
    with pytest.raises(ValueError, match=r"unexpected \['question'\]"):
        render("morphology", question="x")
    with pytest.raises(ValueError, match="empty list"):
        render("classify", classes=[])
