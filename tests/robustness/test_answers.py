"""Bad and doubtful inputs to the answering API and CLI: each gets a clear error naming the
argument, or a result carrying the right warning; outputs agree with each other.

A tiny random model (tests/conftest.py) answers: the cases assert contracts and warnings,
not accuracy.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from unihema.api import UniHemaPipeline
from unihema.api.checks import WARNINGS, answer_warnings, description_conflicts
from unihema.cli import main
from unihema.config import load_config
from unihema.data.text import language
from unihema.data.image_stats import image_statistics
from unihema.evaluation.visualize import OVERLAY_MAX_SIDE, draw_detections, draw_mask
from unihema.modeling.model import UniHema

READ_DETECT = ["red blood cell", "white blood cell", "platelet"]
WHITES = ["lymphocyte", "monocyte", "neutrophil"]


def _pinkish(rng, h=96, w=96):
    base = np.array([225, 190, 200], np.float32) + rng.normal(0, 6, 3)
    return (base + rng.normal(0, 12, (h, w, 3))).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny):
    """A tiny reading model saved with image statistics of pink 'training' fields."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("answers")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        paths.append(root / f"train_{i}.png")
        Image.fromarray(_pinkish(rng)).save(paths[-1])
    stats = image_statistics([(str(p), "field") for p in paths]
                             + [(str(p), "cell") for p in paths])
    cfg = load_config(None, tiny + [
        "model.heads.detect_score_threshold=0", "model.heads.detect_topk=12",
        "model.backbone.small_side=64", "model.reading.tasks=[vqa,mlm]",
        f"model.reading.detect=[{','.join(READ_DETECT)}]",
        f"model.reading.types={{white blood cell: [{','.join(WHITES)}]}}",
        "model.reading.score_threshold=0.05", "model.reading.crop_size=32"])
    model = UniHema.from_config(cfg)
    out = root / "model"
    model.save_pretrained(out, extra={"image_size": 128, "image_stats": stats,
                                      "classes": {"detect": READ_DETECT}})
    return out


@pytest.fixture(scope="module")
def pipe(model_dir):
    return UniHemaPipeline.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def field():
    return _pinkish(np.random.default_rng(1), 128, 128)


def codes(result):
    return [w["code"] for w in result["warnings"]]


# ----------------------------------------------------------------------------- errors
ERRORS = [
    ("classify", {"labels": "lymphocyte"}, ValueError, "got the string 'lymphocyte'"),
    ("classify", {"labels": ["lymphocyte", "lymphocyte"]}, ValueError, "twice"),
    ("classify", {"labels": ["Lymphocyte", "lymphocyte"]}, ValueError, "twice"),
    ("classify", {"labels": []}, ValueError, "labels is empty"),
    ("classify", {"labels": ["monocyte", ""]}, ValueError, "non-empty strings"),
    ("detect", {"classes": "platelet"}, ValueError, "classes must be a list"),
    ("detect", {"classes": ["platelet", "platelets "]}, ValueError, "twice"),
    ("segment", {"classes": ["nucleus", "cytoplasm"]}, ValueError,
     "must start with 'background'"),
    ("segment", {"classes": ["nucleus", "background"]}, ValueError,
     r"\['background', 'nucleus'\]"),
    ("ask", {"question": 5}, TypeError, "question must be a str, got int"),
    ("fill", {"text_with_sentinels": None}, TypeError, "must be a str"),
]


@pytest.mark.parametrize("method,kwargs,error,match", ERRORS,
                         ids=[f"{m}-{i}" for i, (m, *_) in enumerate(ERRORS)])
def test_bad_arguments_are_refused_with_the_reason(pipe, field, method, kwargs, error, match):
    with pytest.raises(error, match=match):
        getattr(pipe, method)(field, **kwargs)


# ----------------------------------------------------------------------------- warnings
def _tiny_image(_):
    return np.full((1, 1, 3), 200, np.uint8)


def _strip(_):  # shrunk 32x to the model's 128 px (an 8000 x 6000 field is 31x)
    return np.full((64, 4096, 3), 210, np.uint8)


def _green(_):
    return np.full((96, 96, 3), (40, 160, 60), np.uint8)


WARNED = [
    ("1x1 image", _tiny_image, "How many platelets are in the image?", "image_too_small"),
    ("shrunk 32x", _strip, "How many white blood cells are in the image?", "downscaled"),
    ("another stain", _green, "How many platelets are in the image?", "unlike_training"),
    ("empty question", None, "", "question_empty"),
    ("blank question", None, "   ", "question_empty"),
    ("german", None, "Wie viele Blutplättchen sind im Bild?", "question_unknown"),
    ("normal smear", None, "Is this smear normal?", "question_unknown"),
    ("type is", None, "What type is the white blood cell?", "question_unknown"),
    ("unicorns", None, "How many unicorns are in the image?", "question_unknown"),
    ("unknown attribute", None, "What is the flavour of the cell?", "question_unknown"),
]


@pytest.mark.parametrize("name,make,question,code", WARNED, ids=[w[0] for w in WARNED])
def test_doubtful_questions_and_images_are_answered_with_a_warning(pipe, field, name, make,
                                                                    question, code):
    image = make(None) if make else field
    res = pipe.ask(image, question)
    assert code in codes(res), res["warnings"]
    assert isinstance(res["answer"], str) and 0.0 <= res["confidence"] <= 1.0
    assert all(w["code"] in WARNINGS and w["message"] for w in res["warnings"])


TRAINED = ["How many platelets are in the image?", "Is there a ring form in the image?",
           "What type of white blood cell is this?", "What is the nucleus shape of the cell?",
           "Where is the monocyte in the image?"]


@pytest.mark.parametrize("question", TRAINED)
def test_trained_questions_on_a_familiar_image_get_no_input_warning(pipe, field, question):
    res = pipe.ask(field, question)
    assert not {"question_empty", "question_unknown", "image_too_small", "downscaled",
                "unlike_training"} & set(codes(res)), res["warnings"]


def test_a_checkpoint_without_image_statistics_skips_that_check(model_dir, tmp_path):
    bare = UniHemaPipeline(UniHema.from_pretrained(model_dir), image_size=128)
    assert "unlike_training" not in codes(bare.ask(_green(None), TRAINED[0]))


ANSWERS = [
    ("What type of white blood cell is this?", "2", True),
    ("How many red blood cells are in the image?", "basophil", True),
    ("Is there a platelet in the image?", "3", True),
    ("Where is the monocyte in the image?", "yes", True),
    ("How many red blood cells are in the image?", "17", False),
    ("What type of white blood cell is this?", "monocyte", False),
    ("Is there a platelet in the image?", "no", False),
]


@pytest.mark.parametrize("question,answer,mismatch", ANSWERS)
def test_an_answer_of_the_wrong_kind_is_flagged(question, answer, mismatch):
    found = [w["code"] for w in answer_warnings(question, answer)]
    assert found == (["answer_mismatch"] if mismatch else [])


LABELS = [
    ("classify", {"labels": ["lymphocyte"]}, "single_label"),
    ("classify", {"labels": ["lymphocyte", "unicorn"]}, "unknown_label"),
    ("detect", {"classes": ["platelet", "unicorn"]}, "unknown_label"),
    ("segment", {"classes": ["background", "unicorn"]}, "unknown_label"),
]


@pytest.mark.parametrize("method,kwargs,code", LABELS, ids=[f"{m}-{c}" for m, _, c in LABELS])
def test_doubtful_label_lists_are_warned_about(pipe, field, method, kwargs, code):
    res = getattr(pipe, method)(field, **kwargs)
    assert code in codes(res)
    if code == "single_label":
        assert res["probs"] == {"lymphocyte": 1.0}


def test_every_result_carries_warnings(pipe, field):
    cell = field[:48, :48]
    for res in (pipe.detect(field), pipe.segment(field), pipe.describe(cell),
                pipe.classify(cell, WHITES), pipe.read(field), pipe.fill(cell, "A <extra_id_0>."),
                pipe.ask(field, TRAINED[0])):
        assert isinstance(res["warnings"], list)


# ----------------------------------------------------------------------------- consistency
def test_answer_counts_are_the_detector_counts_at_one_threshold(pipe, field):
    """The reading (which answers are told) counts what detect finds at its default score."""
    assert pipe.score_threshold == pipe.model.config.reading.score_threshold
    det = pipe.detect(field, READ_DETECT)
    assert det["min_score"] == pipe.score_threshold
    assert sum(det["counts"].values()) > 0, "a zero-threshold random model finds peaks"
    read = [e["text"] for e in pipe.read(field)["entries"]]
    for name, n in det["counts"].items():
        said = [t for t in read if t.split(" ", 1)[-1].startswith(language.plural(name, n))
                and t.split(" ", 1)[0].isdigit()]
        if n:
            assert any(t.startswith(f"{n} {language.plural(name, n)}") for t in said), read
        else:
            assert not said, read


def test_reading_entries_and_answers_carry_a_confidence(pipe, field):
    entries = pipe.read(field)["entries"]
    assert entries and all(0.0 <= e["confidence"] <= 1.0 for e in entries)
    for res in (pipe.ask(field, TRAINED[0]), pipe.fill(field, "A <extra_id_0> field.")):
        assert isinstance(res["confidence"], float) and 0.0 <= res["confidence"] <= 1.0


def test_sequence_probability_is_the_product_of_the_token_probabilities(pipe):
    text = pipe.model.text
    torch.manual_seed(1)
    memory, mask = torch.randn(2, 5, text.d_model), torch.ones(2, 5, dtype=torch.long)
    eos = text.tokenizer.eos_token_id
    ids = torch.tensor([[37, 44, eos, 0], [37, 52, 61, 70]])
    with torch.no_grad():
        logp = text.t5(encoder_outputs=text._memory(memory, mask)[0], attention_mask=mask,
                       decoder_input_ids=torch.tensor([[0, 37, 44, eos], [0, 37, 52, 61]])
                       ).logits.log_softmax(-1)
    want = [logp[0, [0, 1, 2], [37, 44, eos]].sum().exp(),
            logp[1, [0, 1, 2, 3], [37, 52, 61, 70]].sum().exp()]
    got = text.sequence_probs(memory, mask, ids)
    assert got == pytest.approx([float(w) for w in want], rel=1e-4)


def test_describe_returns_a_sentence_within_its_attributes_and_label(pipe, field):
    res = pipe.describe(field[:48, :48])
    assert res["label"] in WHITES
    assert description_conflicts(res["text"], res["attributes"], res["label"]) == []
    if description_conflicts(res["generated"], res["attributes"], res["label"]):
        assert "description_rewritten" in codes(res)


DESCRIPTIONS = [
    ("A big", ["cut"]),
    ("A small round monocyte.", ["cell_size small (predicted big)"]),
    ("A big round lymphocyte.", ["type lymphocyte (classified monocyte)"]),
    ("A big round monocyte with a bilobed nucleus.",
     ["nucleus_shape segmented-bilobed (predicted unsegmented-round)"]),
    ("A big round monocyte with a round nucleus.", []),
]


@pytest.mark.parametrize("sentence,conflicts", DESCRIPTIONS)
def test_a_sentence_is_checked_against_the_attributes(sentence, conflicts):
    attrs = {"cell_size": "big", "cell_shape": "round", "nucleus_shape": "unsegmented-round"}
    assert description_conflicts(sentence, attrs, "monocyte") == conflicts


# ----------------------------------------------------------------------------- overlays
def test_overlays_keep_the_input_size_up_to_the_cap():
    small = np.full((120, 200, 3), 200, np.uint8)
    boxes = [{"box": [10, 10, 40, 40], "label": "platelet", "score": 0.9}]
    assert draw_detections(small, boxes, legend=False).size == (200, 120)
    big = np.full((60, OVERLAY_MAX_SIDE * 2, 3), 200, np.uint8)
    assert draw_detections(big, boxes, legend=False).size == (OVERLAY_MAX_SIDE, 30)
    mask = np.zeros((60, OVERLAY_MAX_SIDE * 2), np.int64)
    assert draw_mask(big, mask, ["background", "nucleus"]).width == OVERLAY_MAX_SIDE


def test_legend_colours_are_the_colours_drawn():
    image = np.full((80, 80, 3), 200, np.uint8)
    pic = np.asarray(draw_detections(image, [{"box": [10, 10, 60, 60], "label": "monocyte",
                                              "score": 0.9}]))
    assert tuple(pic[10, 30]) == tuple(pic[80 + 4 + 6, 12])  # box edge, legend swatch
    mask = np.zeros((80, 80), np.int64)
    mask[20:60, 20:60] = 1
    pic = np.asarray(draw_mask(image, mask, ["background", "nucleus"]))
    assert np.abs(pic[40, 40].astype(int) - pic[80 + 24 + 6, 12]).max() <= 1


# ----------------------------------------------------------------------------- CLI
def test_cli_json_prints_the_result_and_warnings_go_to_stderr(model_dir, tmp_path, capsys):
    path = tmp_path / "tiny.png"
    Image.fromarray(_tiny_image(None)).save(path)
    assert main(["ask", "--model", str(model_dir), str(path), "Is this smear normal?",
                 "--json"]) == 0
    out, err = capsys.readouterr()
    res = json.loads(out)
    assert {"image_too_small", "question_unknown"} <= set(codes(res))
    assert "warning [image_too_small]: " in err and "warning [question_unknown]: " in err


def test_cli_segment_writes_the_raw_class_index_mask(model_dir, field, tmp_path, capsys):
    path, mask = tmp_path / "f.png", tmp_path / "mask.png"
    Image.fromarray(field[:100, :90]).save(path)
    assert main(["segment", "--model", str(model_dir), str(path), "--classes",
                 "background,nucleus,cytoplasm", "--mask", str(mask), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    raw = np.asarray(Image.open(mask))
    assert raw.dtype == np.uint8 and raw.shape == (100, 90) and raw.max() < 3
    assert res["mask_file"] == str(mask) and res["classes"][0] == "background"
    frac = {n: float(np.mean(raw == i)) for i, n in enumerate(res["classes"])}
    assert frac == pytest.approx(res["fractions"], abs=1e-6)


def test_cli_detect_counts_at_the_models_threshold(model_dir, field, tmp_path, capsys):
    path = tmp_path / "f.png"
    Image.fromarray(field).save(path)
    assert main(["detect", "--model", str(model_dir), str(path), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["min_score"] == pytest.approx(0.05)
    assert sum(res["counts"].values()) == len(res["objects"])


def test_cli_names_the_argument_it_refuses(model_dir, field, tmp_path, capsys):
    path = tmp_path / "f.png"
    Image.fromarray(field).save(path)
    assert main(["classify", "--model", str(model_dir), str(path), "--labels",
                 "monocyte,monocyte"]) == 2
    assert "labels names 'monocyte' twice" in capsys.readouterr().err
    assert main(["classify", "--model", str(model_dir), str(path), "--labels",
                 "monocyte"]) == 0
    assert "warning [single_label]" in capsys.readouterr().err


def test_every_warning_code_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "model.md").read_text()
    assert [c for c in WARNINGS if f"| `{c}` |" not in doc] == []
