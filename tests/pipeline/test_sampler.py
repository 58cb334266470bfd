from collections import Counter

import pytest

from unihema.pipeline.sampler import MixtureDataset, MixtureSampler, Source

SOURCES = [Source("a:detect", "detect", 10, 1.0), Source("b:vqa", "vqa", 7, 3.0),
           Source("c:segment", "segment", 5, 1.0)]


def take(sampler, n):
    it = iter(sampler)
    return [next(it) for _ in range(n)]


def test_batches_are_single_source_and_follow_the_weights():
    batches = take(MixtureSampler(SOURCES, 4, seed=0), 2000)
    assert all(len(b) == 4 and len({s for s, _ in b}) == 1 for b in batches)
    share = Counter(b[0][0] for b in batches)
    assert share[1] / 2000 == pytest.approx(0.6, abs=0.04)
    assert share[0] / 2000 == pytest.approx(0.2, abs=0.04)


def test_every_item_is_visited_once_per_pass():
    s = MixtureSampler([Source("only", "detect", 12, 1.0)], 4, seed=3)
    items = [j for b in take(s, 3) for _, j in b]
    assert sorted(items) == list(range(12))


def test_deterministic_and_resumable():
    a = take(MixtureSampler(SOURCES, 3, seed=5), 50)
    assert a == take(MixtureSampler(SOURCES, 3, seed=5), 50)
    assert a != take(MixtureSampler(SOURCES, 3, seed=6), 50)
    s = MixtureSampler(SOURCES, 3, seed=5)
    first = take(s, 20)
    state = s.state_dict()
    resumed = MixtureSampler(SOURCES, 3, seed=5)
    resumed.load_state_dict(state)
    assert first + take(resumed, 30) == a
    with pytest.raises(ValueError, match="saved for sources"):
        MixtureSampler(SOURCES[:2], 3).load_state_dict(state)


def test_ranks_get_disjoint_shares_of_the_same_source():
    world = [MixtureSampler(SOURCES, 2, seed=1, rank=r, world_size=3) for r in range(3)]
    single = take(MixtureSampler(SOURCES, 6, seed=1), 40)
    per_rank = [take(s, 40) for s in world]
    for step in range(40):
        batches = [per_rank[r][step] for r in range(3)]
        assert len({b[0][0] for b in batches}) == 1, "ranks agree on the source"
        union = sorted(j for b in batches for _, j in b)
        assert union == sorted(j for _, j in single[step])


def test_rejects_bad_sources():
    with pytest.raises(ValueError, match="no sources"):
        MixtureSampler([], 2)
    with pytest.raises(ValueError, match=r"no items .*\['e'\]"):
        MixtureSampler([Source("e", "vqa", 0)], 2)
    with pytest.raises(ValueError, match="positive weight"):
        MixtureSampler([Source("w", "vqa", 3, 0.0)], 2)


def test_mixture_dataset_routes_indices():
    ds = MixtureDataset([["a0", "a1"], ["b0"]])
    assert ds[(1, 0)] == "b0" and ds[(0, 1)] == "a1" and len(ds) == 3
    s = MixtureSampler([Source("x", "detect", 2), Source("y", "vqa", 1)], 2, num_batches=5)
    assert len(list(s)) == 5 and len(s) == 5


def test_a_source_may_set_its_own_batch_size():
    s = MixtureSampler([Source("crops", "classify", 100, 1.0, batch_size=16),
                        Source("fields", "detect", 20, 1.0)], 4, seed=0)
    sizes = {b[0][0]: len(b) for b in take(s, 50)}
    assert sizes == {0: 16, 1: 4}


def test_item_weights_draw_items_in_proportion_and_resume():
    """Class-balanced sampling: a source with item weights draws with replacement, item j
    about w_j / sum(w) of the time, still deterministic and resumable."""
    weights = (1.0,) * 8 + (4.0,) * 2  # items 8 and 9 four times as likely as each other one
    src = [Source("c:classify", "classify", 10, 1.0, item_weights=weights)]
    items = Counter(j for b in take(MixtureSampler(src, 5, seed=1), 1200) for _, j in b)
    total = sum(items.values())
    assert items[8] / total == pytest.approx(4 / 16, abs=0.03)
    assert items[0] / total == pytest.approx(1 / 16, abs=0.02)
    a = take(MixtureSampler(src, 5, seed=1), 40)
    s = MixtureSampler(src, 5, seed=1)
    first = take(s, 13)
    resumed = MixtureSampler(src, 5, seed=1)
    resumed.load_state_dict(s.state_dict())
    assert first + take(resumed, 27) == a


@pytest.mark.parametrize("weights", [(1.0, 0.0, 1.0), (1.0, 1.0), (1.0, float("nan"), 1.0)])
def test_item_weights_must_be_positive_one_per_item(weights):
    with pytest.raises(ValueError, match="one positive item weight per item"):
        MixtureSampler([Source("c", "classify", 3, 1.0, item_weights=weights)], 2)
