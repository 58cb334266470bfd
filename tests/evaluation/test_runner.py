"""The one inference loop, and the shuffled-image control that pairs each question with
another image of its kind."""

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


def test_run_evaluation_feeds_every_evaluator_and_calls_the_hooks(synth_root, tiny):
    """The one inference loop on a tiny random model: two evaluators see the same
    predictions, a hook sees each batch with the index of its first item, and the numbers are
    those of evaluate_split (which runs through it)."""
    from torch.utils.data import DataLoader

    from unihema.config import load_config
    from unihema.data.catalog import load_dataset
    from unihema.pipeline.collate import collate
    from unihema.pipeline.mapper import DatasetMapper, TaskDataset
    from unihema.evaluation import EVALUATORS
    from unihema.evaluation.runner import evaluate_split, run_evaluation
    from unihema.modeling.model import UniHema

    cfg = load_config(None, tiny + ["model.tasks=[classify]"])
    torch.manual_seed(0)
    model = UniHema.from_config(cfg).eval()
    samples = [s for s in load_dataset("synthetic_smear", synth_root, "test") if s.label]
    ds = TaskDataset(samples[:5], "classify", DatasetMapper.from_config(cfg, train=False),
                     train=False)
    seen = []
    loader = DataLoader(ds, batch_size=2, collate_fn=collate)
    plain, restricted = run_evaluation(
        model, loader, [EVALUATORS.get("classify")(), EVALUATORS.get("classify")()],
        [lambda batch, preds, start: seen.append((start, len(preds), batch["keys"]))])
    assert [(s, n) for s, n, _ in seen] == [(0, 2), (2, 2), (4, 1)]
    assert [k for *_, keys in seen for k in keys] == [s.key for s in samples[:5]]
    assert plain == restricted and 0.0 <= plain["accuracy"] <= 1.0

    class Split:  # what evaluate_split reads of a task split
        dataset, task, name = ds, "classify", "synthetic_smear/test:classify"

    assert evaluate_split(model, Split, batch_size=2, progress=False) == plain
