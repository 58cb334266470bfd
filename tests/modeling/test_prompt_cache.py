"""UniHema.encode_prompts: prompt encodings kept at inference only, equal to uncached ones."""

from __future__ import annotations

import pytest
import torch

from unihema.config import load_config
from unihema.modeling.model import PROMPT_CACHE_SIZE, UniHema

PROMPTS = ["classify: red blood cell, target cell", "classify: lymphocyte, monocyte",
           "classify: red blood cell, target cell", "detect: platelet"]


@pytest.fixture(scope="module")
def model(tiny):
    torch.manual_seed(0)
    return UniHema.from_config(load_config(None, tiny)).eval()


def _uncached(model, prompts):
    ids, am = model.text.tokenize(list(prompts), model.config.text.max_prompt_tokens)
    return ids, am, model.text.encode(ids, am)


def test_cached_rows_equal_an_uncached_encoding(model):
    model.clear_prompt_cache()
    with torch.no_grad():
        want = _uncached(model, PROMPTS)
        first = model.encode_prompts(PROMPTS)
        again = model.encode_prompts(list(reversed(PROMPTS)))
    assert len(model._prompt_cache) == 1  # one set of distinct prompts, in any order
    for a, b in zip(want[:2], first[:2]):
        assert torch.equal(a, b)
    torch.testing.assert_close(first[2], want[2], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again[2], first[2].flip(0), atol=0, rtol=0)


def test_fused_outputs_are_the_same_with_and_without_the_cache(model):
    images, mask = torch.rand(2, 3, 64, 64), torch.ones(2, 64, 64, dtype=torch.bool)
    prompts = PROMPTS[:2]
    with torch.no_grad():
        visual = model.encode_image(images, mask, dense=False)
        model.clear_prompt_cache()
        cold = model.fuse(visual, mask, prompts)
        warm = model.fuse(visual, mask, prompts)  # from the cache
        with torch.enable_grad():
            plain = model.fuse(visual, mask, prompts)  # gradients on: never cached
    torch.testing.assert_close(warm.joint, cold.joint, atol=0, rtol=0)
    torch.testing.assert_close(plain.joint, cold.joint, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plain.text, cold.text, atol=1e-5, rtol=1e-5)


def test_not_used_in_training_and_invalidated_by_weight_changes(model):
    model.clear_prompt_cache()
    with torch.no_grad():
        model.encode_prompts(PROMPTS)
    assert model._prompt_cache
    model.train()
    assert not model._prompt_cache  # entering training clears it
    with torch.no_grad():
        ids, am, states = model.encode_prompts(PROMPTS)
    assert not model._prompt_cache  # and nothing is cached while training
    model.eval()
    ids, am, states = model.encode_prompts(PROMPTS)  # gradients on
    assert states.requires_grad and not model._prompt_cache
    with torch.no_grad():
        before = model.encode_prompts(PROMPTS)[2]
        weight = next(model.text.t5.encoder.parameters())
        saved = weight.clone()
        weight.add_(0.5)  # an in-place edit, as an optimizer step makes
        after = model.encode_prompts(PROMPTS)[2]
        weight.copy_(saved)
        restored = model.encode_prompts(PROMPTS)[2]
    assert not torch.allclose(before, after)
    torch.testing.assert_close(restored, before, atol=1e-5, rtol=1e-5)
    model.load_state_dict(model.state_dict())
    assert not model._prompt_cache


def test_the_cache_is_bounded(model):
    model.clear_prompt_cache()
    with torch.no_grad():
        for k in range(PROMPT_CACHE_SIZE + 3):
            model.encode_prompts([f"detect: cell {k}"])
    assert len(model._prompt_cache) == PROMPT_CACHE_SIZE
    assert ("detect: cell 0",) not in model._prompt_cache
