import random

from hypothesis import given, settings
from hypothesis import strategies as st

from unihema.data.text import language as L
from unihema.data.vocab import ATTRIBUTES


def test_plural_and_article():
    assert L.plural("red blood cell") == "red blood cells"
    assert L.plural("nucleus") == "nuclei"
    assert L.plural("platelet", 1) == "platelet"
    assert L.article("eosinophil") == "an" and L.article("monocyte") == "a"
    assert L.join_words(["a", "b", "c"]) == "a, b and c"


def test_location_zones():
    assert L.location_name(10, 10, 300, 300) == "top left"
    assert L.location_name(150, 150, 300, 300) == "center"
    assert L.location_name(290, 150, 300, 300) == "middle right"
    assert L.location_name(150, 299, 300, 300) == "bottom center"


def test_describe_cell_mentions_every_attribute_value():
    attrs = {k: v[-1] for k, v in ATTRIBUTES.items()}
    text = L.describe_cell("eosinophil", attrs)
    assert text.startswith("A big irregular eosinophil")
    assert "irregular nucleus" in text and "loose chromatin" in text
    assert "purple blue" in text and "frosted" in text and "vacuolated" in text
    assert "coarse red granules" in text
    # different attribute values give different sentences (the sentence carries the attributes)
    other = dict(attrs, cytoplasm_vacuole="no")
    assert L.describe_cell("eosinophil", other) != text


def test_describe_field_counts_and_parasites():
    text = L.describe_field({"red blood cell": 3, "platelet": 1, "white blood cell": 0},
                            infected=1, white_cells=["lymphocyte"])
    assert "3 red blood cells" in text and "1 platelet" in text and "white blood cell" not in text
    assert "a lymphocyte" in text and "in 1 red cell." in text
    assert L.describe_field({}) == "This field contains no cells."


def test_qa_helpers():
    q = L.qa_count("platelet", 4)
    assert (q.question, q.answer, q.qtype) == ("How many platelets are in the image?", "4",
                                               "count")
    assert L.qa_presence("eosinophil", False).question == "Is there an eosinophil in the image?"
    assert L.qa_attribute("cytoplasm_colour", "blue").question == (
        "What is the cytoplasm color of the cell?")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["red", "cells", "a", "field", "of", "3", "ring."]), min_size=1,
                max_size=60), st.integers(0, 10_000), st.floats(0.05, 0.5))
def test_mask_spans_is_invertible(words, seed, density):
    text = " ".join(words)
    masked, target = L.mask_spans(text, random.Random(seed), noise_density=density)
    assert "<extra_id_0>" in masked and target.startswith("<extra_id_0>")
    assert L.unmask(masked, target) == text
    n_sentinels = masked.count("<extra_id_")
    assert target.count("<extra_id_") == n_sentinels + 1  # closing sentinel


# ----------------------------------------------------------------------------- reading
FIELD = ["red blood cell", "target cell", "target cell", "atypical lymphocyte", "platelet"]
CENTRES = [(10, 10), (100, 100), (200, 30), (20, 240), (250, 250)]
BOXES = [(x - 2, y - 2, x + 2, y + 2) for x, y in CENTRES]


def test_read_field_counts_broader_terms_and_places_single_objects():
    entries = dict(L.read_field(FIELD, BOXES, 256, 256, order=["red blood cell"]))
    assert list(entries)[0] == "red blood cell"
    assert entries["red blood cell"] == "3 red blood cells"
    assert entries["target cell"] == "2 target cells"
    assert entries["atypical lymphocyte"] == "1 atypical lymphocyte bottom left"
    # a broader term with one member names its type too
    assert entries["white blood cell"] == "1 white blood cell bottom left, an atypical lymphocyte"
    assert entries["lymphocyte"].startswith("1 lymphocyte bottom left")
    assert entries["platelet"] == "1 platelet bottom right"
    assert L.read_field([], [], 256, 256) == []


def test_read_cell_uses_the_words_of_questions():
    entries = L.read_cell({"white blood cell": "monocyte"},
                          {"cytoplasm_colour": "blue", "cell_size": "big"})
    assert entries == [("white blood cell", "white blood cell type monocyte"),
                       ("cell size", "cell size big"), ("cytoplasm color", "cytoplasm color blue")]
    assert L.read_cell({}, {}) == []
    assert L.lineage("atypical lymphocyte") == "white blood cell"
    assert L.lineage("red blood cell") == "red blood cell"


def test_relevant_entries_follow_the_words_of_the_question():
    entries = L.read_field(FIELD, BOXES, 256, 256)
    text = L.reading_text
    assert text(entries, "How many red blood cells are in the image?") == "3 red blood cells"
    assert text(entries, "How many target cells are in the image?") == "2 target cells"
    # the longer name wins over the one inside it
    assert text(entries, "How many atypical lymphocytes are there?").startswith(
        "1 atypical lymphocyte")
    assert text(entries, "Is there a monocyte in the image?") == "nothing"
    cell = L.read_cell({"white blood cell": "monocyte", "red blood cell": "target cell"},
                       {"cell_shape": "round", "nucleus_shape": "irregular"})
    assert text(cell, "What is the nucleus shape of the cell?") == "nucleus shape irregular"
    assert text(cell, "What type of white blood cell is this?") == (
        "white blood cell type monocyte")
    assert text(cell, "What type of red blood cell is this?") == "red blood cell type target cell"
    assert text(cell) == ("white blood cell type monocyte; red blood cell type target cell; "
                          "cell shape round; nucleus shape irregular")


def test_report_field_matches_describe_field():
    boxes = [(0, 0, 10, 10), (0, 0, 10, 10), (0, 0, 10, 10), (5, 200, 30, 230),
             (240, 240, 250, 250), (0, 100, 20, 120), (50, 90, 70, 110)]
    labels = FIELD + ["monocyte", "ring form"]
    assert L.report_field(labels, boxes) == L.describe_field(
        {"red blood cell": 3, "white blood cell": 2, "platelet": 1}, infected=1,
        white_cells=["monocyte", "atypical lymphocyte"], red_morphologies={"target cell": 2})


@given(st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_fill_hints_from_the_true_report_are_the_target(seed):
    report = ("This field shows 32 red blood cells and 2 white blood cells. Among the red "
              "cells are 12 target cells and 1 spherocyte. No parasites are seen.")
    masked, target = L.mask_spans(report, random.Random(seed))
    closing = target.split()[-1]
    assert L.fill_hints(masked, report) == target[:-len(closing)].strip()


def test_fill_hints_from_another_report():
    masked = "This field shows <extra_id_0> red blood cells. No <extra_id_1>"
    assert L.fill_hints(masked, "This field shows 30 red blood cells. No parasites are seen.") \
        == "<extra_id_0> 30 <extra_id_1> parasites are seen."
    # a blank whose context is nowhere in the report gets no passage
    assert L.fill_hints("Totally <extra_id_0> words", "This field shows 3 platelets.") \
        == "<extra_id_0>"
