"""The box policy: what an adapter does with a source box that does not fit its image."""

from __future__ import annotations

import pytest

from unihema.data.boxes import (CLIP_ROUNDING, FIT_BORDER, BoxPolicy, fit_box, place_box)
from unihema.data.catalog import DataError, DatasetAdapter


class _Plain(DatasetAdapter):
    """An adapter with nothing to load: only its report/note book-keeping is used."""

    name = "plain"


@pytest.fixture
def ad(tmp_path):
    return _Plain(tmp_path, on_error="skip")


def test_a_box_inside_is_returned_as_floats(ad):
    assert place_box(ad, "a.xml", (1, 2, 30, 40), 100, 50) == (1.0, 2.0, 30.0, 40.0)
    assert not ad.problems and not ad.notes


@pytest.mark.parametrize("policy,noted", [(FIT_BORDER, True), (CLIP_ROUNDING, False)])
def test_an_edge_within_the_tolerance_is_moved_onto_the_border(ad, policy, noted):
    box = (-policy.tolerance, 0.5, 100 + policy.tolerance, 50)
    assert place_box(ad, "a.xml", box, 100, 50, "object 0 'RBC'", policy=policy) \
        == (0.0, 0.5, 100.0, 50.0)
    assert not ad.problems
    assert [n.reason.startswith("object 0 'RBC': box [") and "moved onto the border"
            in n.reason for n in ad.notes] == ([True] if noted else [])


@pytest.mark.parametrize("bad", ["error", "drop"])
def test_error_and_drop_report_far_and_empty_boxes_as_problems(ad, bad):
    policy = BoxPolicy(bad=bad, tolerance=1.0)
    assert place_box(ad, "a.txt", (10, 10, 130, 40), 100, 50, line=3, policy=policy) is None
    assert place_box(ad, "a.txt", (10, 10, 10, 40), 100, 50, line=4, policy=policy) is None
    # wholly past the border by less than the tolerance: empty once moved onto it
    assert place_box(ad, "a.txt", (100.2, 0, 100.8, 9), 100, 50, line=5, policy=policy) is None
    assert [(p.file, p.line) for p in ad.problems] == [("a.txt", 3), ("a.txt", 4), ("a.txt", 5)]
    assert "lies outside the 100x50 image (by more than 1 px)" in ad.problems[0].reason
    assert "empty box [10.0, 10.0, 10.0, 40.0]" in ad.problems[1].reason
    assert "empty once clipped" in ad.problems[2].reason
    assert policy.drops_image is (bad == "error")


def test_under_on_error_raise_a_bad_box_stops_the_load(tmp_path):
    with pytest.raises(DataError, match="a.txt:7: .*outside the 100x50 image"):
        place_box(_Plain(tmp_path), "a.txt", (0, 0, 200, 10), 100, 50, line=7,
                  policy=BoxPolicy(bad="drop"))


def test_clip_clips_any_overshoot_and_drops_empty_boxes_with_notes_only(ad):
    clip = BoxPolicy(bad="clip")
    assert place_box(ad, "a.xml", (-30, 10, 130, 40), 100, 50, policy=clip) \
        == (0.0, 10.0, 100.0, 40.0)
    assert place_box(ad, "a.xml", (5, 5, 5, 9), 100, 50, policy=clip) is None
    assert place_box(ad, "a.xml", (120, 5, 140, 9), 100, 50, policy=clip) is None
    assert not ad.problems
    reasons = [n.reason for n in ad.notes]
    assert len(reasons) == 3 and "clipped to it" in reasons[0]
    assert "empty box" in reasons[1] and "empty once clipped" in reasons[2]


def test_fit_box_is_place_box_under_fit_border(ad):
    assert fit_box(ad, "a.xml", (-1, 0, 10, 10), 100, 50, "object 1") == (0.0, 0.0, 10.0, 10.0)
    assert fit_box(ad, "a.xml", (-1.5, 0, 10, 10), 100, 50, "object 2") is None
    assert "object 2: box [-1.5, 0.0, 10.0, 10.0] lies outside" in ad.problems[0].reason


def test_a_policy_names_its_choice_and_a_tolerance_that_makes_sense():
    with pytest.raises(ValueError, match="one of \\('error', 'drop', 'clip'\\), got 'skip'"):
        BoxPolicy(bad="skip")
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        BoxPolicy(tolerance=-1)
    assert (FIT_BORDER.tolerance, FIT_BORDER.note_repairs) == (1.0, True)
    assert (CLIP_ROUNDING.tolerance, CLIP_ROUNDING.note_repairs) == (2.0, False)
