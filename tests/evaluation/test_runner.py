"""The runner's shuffled-image control pairs each question with another image of its kind."""

from __future__ import annotations

import torch

from unihema.evaluation.runner import ShuffledImages, image_kind


def test_shuffled_images_stay_within_their_kind_and_never_keep_their_own():
    sides = [96, 256, 96, 96, 256, 64, 256, 256]
    base = [{"image": torch.full((3, s, s), float(i)), "question": i} for i, s in enumerate(sides)]
    shuffled = ShuffledImages(base, seed=3)
    for i, item in enumerate(shuffled):
        j = int(item["image"][0, 0, 0])
        assert item["question"] == i and j != i
        assert image_kind(base[j]["image"]) == image_kind(base[i]["image"])
    assert sorted(int(shuffled[i]["image"][0, 0, 0]) for i in range(len(sides))) == list(
        range(len(sides)))


def test_a_lone_item_of_its_kind_keeps_its_image():
    base = [{"image": torch.zeros(3, 96, 96)}, {"image": torch.ones(3, 256, 256)},
            {"image": torch.full((3, 256, 256), 2.0)}]
    shuffled = ShuffledImages(base)
    assert list(shuffled.perm) == [0, 2, 1]
