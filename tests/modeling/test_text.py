"""The text stack: shipped tokenizer, T5 encoder/decoder wrapper, grounding, local loading."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from unihema.config.schema import SynthConfig, TextConfig
from unihema.data import vocab
from unihema.data.text import language
from unihema.tasks import prompts
from unihema.modeling.text import SHIPPED_TOKENIZER, TextModel, clean_text, load_tokenizer
from unihema.synth import render_field

TINY = dict(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=4)
EXAMPLES = ["detect: red blood cell; platelet", "How many red blood cells are in the image? 12",
            "<extra_id_0> white blood <extra_id_1> a monocyte."]


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


@pytest.fixture()
def model(tok):
    torch.manual_seed(0)
    return TextModel.from_config(TextConfig(**TINY), tok)


# ----------------------------------------------------------------------------- tokenizer
def test_shipped_tokenizer_layout(tok):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(SHIPPED_TOKENIZER / "spiece.model"))
    assert len(tok) == sp.get_piece_size() > 500  # the real vocabulary, not the 4-token quirk
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    for i in (0, 1, 57, 99):
        ids = tok(language.sentinel(i), add_special_tokens=False).input_ids
        assert ids == [tok.convert_tokens_to_ids(language.sentinel(i))]
    # common words are whole pieces
    for word in ("red blood cell", "neutrophil", "lymphocyte", "12"):
        assert len(tok(word, add_special_tokens=False).input_ids) == len(word.split())


def test_round_trip_and_no_unknowns(tok, model):
    for text in EXAMPLES:
        ids = tok(text).input_ids
        assert ids[-1] == tok.eos_token_id
        assert model.decode(torch.tensor([ids]))[0] == text
    lines = [t.name for t in vocab.TERMS] + [s for t in vocab.TERMS for s in t.synonyms]
    lines += [prompts.render("detect", classes=vocab.names())]
    f = render_field([3, 1, 4], SynthConfig(size=128))
    lines += [f.report] + [s for qa in f.qa for s in (qa.question, qa.answer)]
    lines += [c.report for c in f.crops] + ["The quick brown fox, 0-200 (x): ok?"]
    for line in lines:
        ids = tok(line, add_special_tokens=False).input_ids
        assert tok.unk_token_id not in ids, line
        assert model.decode(torch.tensor([ids]))[0] == line


def test_clean_text_spacing():
    assert clean_text("<extra_id_0> white blood<extra_id_1> a.") == \
        "<extra_id_0> white blood <extra_id_1> a."
    assert clean_text("<extra_id_0><extra_id_1>  x") == "<extra_id_0> <extra_id_1> x"


def test_tokenizer_save_reload_identical_ids(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    again = load_tokenizer(str(tmp_path))
    assert len(again) == len(tok)
    for text in EXAMPLES:
        assert again(text).input_ids == tok(text).input_ids


def test_tokenizer_dir_without_files_names_the_dir(tmp_path):
    empty = tmp_path / "no_tokenizer_here"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no_tokenizer_here"):
        load_tokenizer(str(empty))
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        load_tokenizer(str(tmp_path / "does_not_exist"))


# ----------------------------------------------------------------------------- encoder
def test_tokenize_and_encode_shapes(model):
    ids, mask = model.tokenize(["detect: red blood cell; platelet", "platelet"])
    assert ids.dtype == mask.dtype == torch.long and ids.shape == mask.shape
    assert ids.shape[0] == 2 and mask[1].sum() < mask[0].sum()
    assert model.encode(ids, mask).shape == (*ids.shape, 64)
    ids, _ = model.tokenize(["word " * 50], max_len=10)
    assert ids.shape == (1, 10) and ids[0, -1] == model.tokenizer.eos_token_id


def test_embed_phrases_shapes_duplicates_and_gradients(model):
    model.train()
    emb = model.embed_phrases(["platelet", "monocyte", "platelet"])
    assert emb.shape == (3, 64) and emb.requires_grad
    assert torch.equal(emb[0], emb[2]) and not torch.equal(emb[0], emb[1])
    emb.sum().backward()
    assert model.t5.shared.weight.grad is not None
    assert not model._cache  # never cached in training
    assert model.embed_phrases([]).shape == (0, 64)


def test_embed_phrases_cache_only_in_eval(model, monkeypatch):
    calls = []
    embed = model._embed
    monkeypatch.setattr(model, "_embed", lambda p: calls.append(list(p)) or embed(p))
    model.eval()
    with torch.no_grad():
        first = model.embed_phrases(["platelet", "lymphocyte"])
        model.eval()  # eval again (as a predict loop does) keeps the cache
        again = model.embed_phrases(["lymphocyte", "monocyte", "lymphocyte"])
    assert calls == [["platelet", "lymphocyte"], ["monocyte"]]
    assert torch.equal(again[0], first[1]) and torch.equal(again[0], again[2])
    with torch.enable_grad():  # eval with gradients on: computed, never cached
        assert model.embed_phrases(["platelet"]).requires_grad
    assert calls[-1] == ["platelet"] and set(model._cache) == {"platelet", "lymphocyte",
                                                                "monocyte"}
    model.train()
    assert not model._cache
    model.eval()
    with torch.no_grad():
        model.embed_phrases(["platelet"])
        model.load_state_dict(model.state_dict())
        assert not model._cache
        model.embed_phrases(["platelet"])
        torch.nn.init.normal_(model.t5.shared.weight)  # weights edited in eval mode
        changed = model.embed_phrases(["platelet"])
    assert calls[-2:] == [["platelet"], ["platelet"]]
    assert not torch.equal(changed[0], first[0])


# ----------------------------------------------------------------------------- decoder
def test_decoder_learns_image_grounded_answers(model):
    """Same decoder, two memories, two targets: the answer must follow the memory."""
    torch.manual_seed(1)
    memory = torch.randn(2, 6, 64)
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, 4:] = 0
    targets = ["<extra_id_0> white blood <extra_id_1> a monocyte.",
               "How many red blood cells are in the image? 12"]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(30):
        out = model.decoder_forward(memory, mask, targets)
        assert torch.isfinite(out.loss)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.25 * losses[0]
    assert out.accuracy.item() == 1.0 and out.tokens == 20
    model.eval()
    assert model.generate(memory, mask, max_new_tokens=24) == targets
    assert model.generate(memory[[1, 0]], mask[[1, 0]], max_new_tokens=24) == targets[::-1]
    beams = model.generate(memory, mask, max_new_tokens=24, num_beams=3)
    assert beams == targets


def test_beam_search_and_empty_batches(model):
    model.eval()
    memory, mask = torch.randn(3, 5, 64), torch.ones(3, 5, dtype=torch.long)
    out = model.generate(memory, mask, max_new_tokens=5, num_beams=3)
    assert len(out) == 3 and all(isinstance(s, str) for s in out)
    assert model.generate(memory[:0], mask[:0], max_new_tokens=5) == []
    model.train()
    loss = model.decoder_loss(memory[:0].requires_grad_(), mask[:0], [])
    assert loss.item() == 0.0
    with pytest.raises(ValueError, match=r"\[B, M, 64\]"):
        model.decoder_loss(torch.randn(1, 5, 32), mask[:1], ["x"])


# ----------------------------------------------------------------------------- loading
def test_load_local_hf_t5_directory(tok, tmp_path, caplog):
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(2)
    ref = T5ForConditionalGeneration(T5Config(vocab_size=len(tok), dropout_rate=0.0,
                                              decoder_start_token_id=0, **TINY))
    ref.save_pretrained(tmp_path / "t5")
    # sizes in the config are ignored in favour of the checkpoint's
    model = TextModel.from_config(TextConfig(pretrained=str(tmp_path / "t5"), d_model=32), tok)
    assert model.d_model == 64
    name = "decoder.block.1.layer.2.DenseReluDense.wo.weight"
    assert torch.equal(model.t5.get_parameter(name), ref.get_parameter(name))
    ref.eval()
    model.eval()
    ids, mask = model.tokenize(EXAMPLES)
    assert torch.equal(model.encode(ids, mask), ref.encoder(input_ids=ids,
                                                            attention_mask=mask).last_hidden_state)
    memory = model.encode(ids, mask)
    labels = model.labels(EXAMPLES)
    ref_loss = ref(encoder_outputs=(memory,), attention_mask=mask, labels=labels).loss
    assert torch.allclose(model.decoder_loss(memory, mask, EXAMPLES), ref_loss)

    # a whole-model checkpoint rebuilds the loaded architecture (here ReLU, unlike random init)
    arch = json.loads(json.dumps(model.architecture()))
    rebuilt = TextModel.from_config(TextConfig(**TINY), tok, t5_config=arch)
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    assert torch.equal(rebuilt.decoder_loss(memory, mask, EXAMPLES),
                       model.decoder_loss(memory, mask, EXAMPLES))

    T5ForConditionalGeneration(T5Config(vocab_size=500, **TINY)).save_pretrained(tmp_path / "v")
    with caplog.at_level(logging.WARNING, logger="unihema.modeling.text"):
        resized = TextModel.from_config(TextConfig(pretrained=str(tmp_path / "v")), tok)
    assert resized.t5.get_output_embeddings().weight.shape[0] == len(tok)
    assert "resizing" in caplog.text
    with pytest.raises(FileNotFoundError, match="not_a_model"):
        TextModel.from_config(TextConfig(pretrained=str(tmp_path / "not_a_model")), tok)


def test_copy_pointer_learns_to_copy_from_the_memory_fast(tok):
    """With ``copy``, answers copied from the memory's token ids are learned in a few steps,
    for greedy and beam decoding alike, and positions without an id are never copied."""
    torch.manual_seed(0)
    model = TextModel.from_config(TextConfig(**TINY, copy=True), tok)
    words = ["monocyte", "spherocyte", "basophil", "platelet", "eosinophil", "lymphocyte"]
    rows = [tok(w, add_special_tokens=False).input_ids for w in words]
    width = max(map(len, rows)) + 2
    ids = torch.full((len(words), width), -1)
    for i, r in enumerate(rows):
        ids[i, 2:2 + len(r)] = torch.tensor(r)
    memory = model.t5.shared(ids.clamp(min=0)) * (ids >= 0)[..., None]
    memory = (memory + torch.randn_like(memory) * 0.1).detach()
    mask = torch.ones(ids.shape, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(40):
        out = model.decoder_forward(memory, mask, words, ids)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    model.eval()
    assert model.generate(memory, mask, max_new_tokens=8, memory_ids=ids) == words
    assert model.generate(memory, mask, max_new_tokens=8, memory_ids=ids, num_beams=3) == words
    # the pointer is what answers: the ids of another row give that row's word
    swapped = model.generate(memory, mask, max_new_tokens=8, memory_ids=ids[[1, 0, 2, 3, 4, 5]])
    assert swapped[:2] == ["spherocyte", "monocyte"]
    none = torch.full_like(ids, -1)
    assert all(isinstance(t, str) for t in model.generate(memory, mask, max_new_tokens=4,
                                                          memory_ids=none))


def test_copy_pointer_copies_a_passage_in_order(tok):
    """Aligned copy: answer step t may point at token t of the reading (``memory_offsets``),
    so a passage is copied in its order even when its words also stand elsewhere."""
    torch.manual_seed(0)
    model = TextModel.from_config(TextConfig(**TINY, copy=True), tok)
    passages = ["<extra_id_0> 12 <extra_id_1> target cells", "<extra_id_0> cells 12",
                "<extra_id_0> target <extra_id_1> 12 cells", "<extra_id_0> 3 cells"]
    ids, mask, offsets = model.tokenize_pairs(["fill: 12 target cells reading:"] * 4, passages)
    assert (offsets[0] >= 0).sum() == len(tok(passages[0]).input_ids)
    assert offsets[0][offsets[0] >= 0].tolist() == list(range(int((offsets[0] >= 0).sum())))
    memory = model.t5.shared(ids).detach()
    memory_ids = ids.masked_fill(mask == 0, -1)
    targets = [p + f" <extra_id_{p.count('<extra_id_')}>" for p in passages]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        loss = model.decoder_loss(memory, mask, targets, memory_ids, offsets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    out = model.generate(memory, mask, max_new_tokens=12, memory_ids=memory_ids,
                         memory_offsets=offsets)
    assert out == targets
