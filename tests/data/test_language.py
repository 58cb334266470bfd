import random

from hypothesis import given, settings
from hypothesis import strategies as st

from unihema.data import language as L
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
