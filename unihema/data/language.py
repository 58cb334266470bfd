"""Text rendered from structured truth: morphology sentences, field reports, question/answer
pairs and T5 masked-span corruption.

Adapters and the synthetic generator never write free text themselves; they call these functions
so that every source speaks the same language and the model learns one phrasing per fact.
"""

from __future__ import annotations

import random
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from unihema.data.sample import QAPair

# ----------------------------------------------------------------------------- words
_IRREGULAR_PLURALS = {"nucleus": "nuclei", "babesia": "babesia", "leishmania": "leishmania",
                      "toxoplasma": "toxoplasma", "debris": "debris"}


def plural(name: str, n: int = 2) -> str:
    """``plural("red blood cell") -> "red blood cells"``; singular when ``n == 1``."""
    if n == 1:
        return name
    words = name.split(" ")
    last = words[-1]
    if last in _IRREGULAR_PLURALS:
        last = _IRREGULAR_PLURALS[last]
    elif last.endswith(("s", "x", "sh", "ch")):
        last += "es"
    else:
        last += "s"
    return " ".join(words[:-1] + [last])


def article(word: str) -> str:
    """``"a"`` or ``"an"`` for the word that follows."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def join_words(items: Sequence[str]) -> str:
    """``["a", "b", "c"] -> "a, b and c"``."""
    items = list(items)
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def location_name(cx: float, cy: float, width: int, height: int) -> str:
    """Name the 3x3 zone of a point: ``"top left"``, ``"center"``, ``"bottom right"``..."""
    col = min(2, max(0, int(3 * cx / max(width, 1))))
    row = min(2, max(0, int(3 * cy / max(height, 1))))
    rows = ("top", "middle", "bottom")
    cols = ("left", "center", "right")
    if row == 1 and col == 1:
        return "center"
    if row == 1:
        return f"middle {cols[col]}"
    if col == 1:
        return f"{rows[row]} center"
    return f"{rows[row]} {cols[col]}"


# ----------------------------------------------------------------------------- morphology
_ATTR_PHRASES: Dict[str, Dict[str, str]] = {
    "nucleus_shape": {
        "unsegmented-round": "a round nucleus",
        "unsegmented-indented": "an indented, kidney-shaped nucleus",
        "unsegmented-band": "a band-shaped nucleus",
        "segmented-bilobed": "a bilobed nucleus",
        "segmented-multilobed": "a multilobed nucleus",
        "irregular": "an irregular nucleus",
    },
    "chromatin_density": {"densely": "dense chromatin", "loosely": "fine, loose chromatin"},
    "nuclear_cytoplasmic_ratio": {
        "low": "a low nuclear to cytoplasmic ratio",
        "high": "a high nuclear to cytoplasmic ratio",
    },
    "cytoplasm_vacuole": {"yes": "vacuolated", "no": "without vacuoles"},
    "cytoplasm_texture": {"clear": "clear", "frosted": "frosted"},
}


def describe_cell(label: Optional[str], attributes: Mapping[str, str]) -> str:
    """One sentence stating a cell's type and every attribute given.

    Example: ``"A big round monocyte with an indented, kidney-shaped nucleus, fine, loose
    chromatin and a low nuclear to cytoplasmic ratio; its cytoplasm is blue, frosted and
    vacuolated, with no granules."`` Attributes absent from ``attributes`` are not mentioned.
    """
    a = dict(attributes)
    head = [w for w in (a.get("cell_size"), a.get("cell_shape")) if w]
    noun = label or "cell"
    subject = " ".join(head + [noun])
    sentence = f"{article(subject).capitalize()} {subject}"
    nuc = [
        _ATTR_PHRASES[k][a[k]]
        for k in ("nucleus_shape", "chromatin_density", "nuclear_cytoplasmic_ratio")
        if k in a and a[k] in _ATTR_PHRASES[k]
    ]
    if nuc:
        sentence += " with " + join_words(nuc)
    cyto = []
    if "cytoplasm_colour" in a:
        cyto.append(a["cytoplasm_colour"])
    if "cytoplasm_texture" in a:
        cyto.append(_ATTR_PHRASES["cytoplasm_texture"].get(a["cytoplasm_texture"], ""))
    if "cytoplasm_vacuole" in a:
        cyto.append(_ATTR_PHRASES["cytoplasm_vacuole"].get(a["cytoplasm_vacuole"], ""))
    cyto = [c for c in cyto if c]
    gran = ""
    if a.get("granularity") == "no" or a.get("granule_type") == "nil":
        gran = "no granules"
    elif "granule_type" in a or "granule_colour" in a:
        words = [w for w in (a.get("granule_type"), a.get("granule_colour")) if w and w != "nil"]
        gran = " ".join(words + ["granules"])
    if cyto or gran:
        sentence += "; its cytoplasm is " + join_words(cyto) if cyto else "; it has"
        if gran:
            sentence += (", with " if cyto else " ") + gran
    return sentence + "."


def describe_field(
    counts: Mapping[str, int],
    *,
    infected: int = 0,
    white_cells: Sequence[str] = (),
    red_morphologies: Optional[Mapping[str, int]] = None,
) -> str:
    """A short report of a field of view: what is there and how many.

    Args:
        counts: canonical class -> number of objects (zero counts are skipped); group terms
            (``"red blood cell"``) count every member of the group.
        infected: number of red cells carrying a parasite.
        white_cells: canonical types of the white cells present, in reading order.
        red_morphologies: abnormal red-cell morphology -> count, listed after the totals.
    """
    parts = [f"{n} {plural(name, n)}" for name, n in counts.items() if n > 0]
    if not parts:
        return "This field contains no cells."
    text = f"This field shows {join_words(parts)}."
    abnormal = [(k, n) for k, n in (red_morphologies or {}).items() if n > 0]
    if abnormal:
        verb = "is" if len(abnormal) == 1 and abnormal[0][1] == 1 else "are"
        listed = join_words([f"{n} {plural(k, n)}" for k, n in abnormal])
        text += f" Among the red cells {verb} {listed}."
    if white_cells:
        kinds = sorted(set(white_cells), key=list(white_cells).index)
        text += f" The white {'cell is' if len(white_cells) == 1 else 'cells are'} "
        text += join_words([f"{article(k)} {k}" for k in kinds]) + "."
    if infected:
        text += f" Ring forms of a malaria parasite are seen in {infected} red "
        text += "cell." if infected == 1 else "cells."
    else:
        text += " No parasites are seen."
    return text


# ----------------------------------------------------------------------------- QA
def qa_count(name: str, n: int) -> QAPair:
    return QAPair(f"How many {plural(name)} are in the image?", str(n), "count")


def qa_presence(name: str, present: bool) -> QAPair:
    return QAPair(f"Is there {article(name)} {name} in the image?", "yes" if present else "no",
                  "presence")


def qa_type(kind: str, answer: str) -> QAPair:
    """``kind`` is the group asked about (``"white blood cell"``), ``answer`` its type."""
    return QAPair(f"What type of {kind} is this?", answer, "type")


def qa_attribute(attribute: str, value: str, subject: str = "cell") -> QAPair:
    words = attribute.replace("_", " ").replace("colour", "color")
    return QAPair(f"What is the {words} of the {subject}?", value, "attribute")


def qa_location(name: str, where: str) -> QAPair:
    return QAPair(f"Where is the {name} in the image?", where, "location")


# ----------------------------------------------------------------------------- span masking
def sentinel(i: int) -> str:
    """The T5 sentinel token for span ``i``: ``<extra_id_0>``, ``<extra_id_1>``..."""
    return f"<extra_id_{i}>"


def mask_spans(
    text: str,
    rng: random.Random,
    *,
    noise_density: float = 0.15,
    mean_span: float = 3.0,
    max_spans: int = 100,
) -> Tuple[str, str]:
    """T5 span corruption over whitespace words.

    Returns ``(masked_text, target)``: ``"The <extra_id_0> shows ..."`` and
    ``"<extra_id_0> field <extra_id_1> ..."``. At least one word is masked when ``text`` has
    any; the target ends with a closing sentinel as in T5 pre-training.
    """
    words = text.split()
    if not words:
        return text, sentinel(0)
    n_mask = max(1, round(len(words) * noise_density))
    n_spans = max(1, min(max_spans, round(n_mask / mean_span), n_mask))
    # choose span lengths summing to n_mask, and start positions that do not overlap
    lengths = [1] * n_spans
    for _ in range(n_mask - n_spans):
        lengths[rng.randrange(n_spans)] += 1
    free = len(words) - n_mask
    gaps = sorted(rng.randint(0, free) for _ in range(n_spans))
    masked: List[str] = []
    target: List[str] = []
    pos = 0
    prev_gap = 0
    for i, (gap, length) in enumerate(zip(gaps, lengths)):
        keep = gap - prev_gap
        masked.extend(words[pos:pos + keep])
        pos += keep
        masked.append(sentinel(i))
        target.append(sentinel(i))
        target.extend(words[pos:pos + length])
        pos += length
        prev_gap = gap
    masked.extend(words[pos:])
    target.append(sentinel(n_spans))
    return " ".join(masked), " ".join(target)


def unmask(masked: str, target: str) -> str:
    """Invert :func:`mask_spans`: fill each sentinel of ``masked`` from ``target``."""
    fills: Dict[str, List[str]] = {}
    current: Optional[str] = None
    for w in target.split():
        if w.startswith("<extra_id_"):
            current = w
            fills[current] = []
        elif current is not None:
            fills[current].append(w)
    out = []
    for w in masked.split():
        out.extend(fills.get(w, [w]) if w.startswith("<extra_id_") else [w])
    return " ".join(out)
