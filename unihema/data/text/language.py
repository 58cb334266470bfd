"""Text rendered from structured truth: morphology sentences, field reports, question/answer
pairs and T5 masked-span corruption.

Adapters and the synthetic generator never write free text themselves; they call these functions
so that every source speaks the same language and the model learns one phrasing per fact.
"""

from __future__ import annotations

import random
import re
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
    return QAPair(f"What is the {attribute_words(attribute)} of the {subject}?", value,
                  "attribute")


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


# ----------------------------------------------------------------------------- reading
#: One entry of a reading: ``(key, text)``, e.g. ``("target cell", "12 target cells")`` or
#: ``("nucleus shape", "nucleus shape unsegmented-round")``; the key is what a question names.
Entry = Tuple[str, str]


def attribute_words(attribute: str) -> str:
    """``"cytoplasm_colour" -> "cytoplasm color"``: an attribute as questions name it."""
    return attribute.replace("_", " ").replace("colour", "color")


def read_cell(types: Mapping[str, str], attributes: Optional[Mapping[str, str]] = None
              ) -> List[Entry]:
    """What is seen on a single-cell image: ``[("white blood cell", "white blood cell type
    monocyte"), ("cell size", "cell size big"), ...]``.

    ``types`` maps a lineage to the cell's type within it (:func:`lineage` of the type, as in
    ``{"white blood cell": "monocyte"}``; a reader unsure of the lineage may give one per
    lineage, and a question names the one it asks about); then each attribute (sorted by key)
    in the words a question uses for it.
    """
    out = [(group, f"{group} type {label}") for group, label in types.items() if label]
    for k, v in sorted((attributes or {}).items()):
        out.append((attribute_words(k), f"{attribute_words(k)} {v}"))
    return out


def lineage(label: str) -> str:
    """The broadest term above ``label`` (``"atypical lymphocyte" -> "white blood cell"``), or
    ``label`` itself."""
    from unihema.data import vocab

    return (vocab.ancestors(label) or [label])[-1]


def read_field(labels: Sequence[str], boxes: Sequence[Sequence[float]], width: int,
               height: int, order: Sequence[str] = ()) -> List[Entry]:
    """What is seen on a field of view of ``width`` x ``height`` pixels, ``labels`` at
    ``boxes`` (xyxy): counts per type and broader term, and where single objects are (the zone
    of the box centre): ``[("red blood cell", "32 red blood cells"), ("spherocyte", "1
    spherocyte middle left"), ...]``.

    A broader term (``vocab.ancestors``) counts every narrower one, as questions do ("how many
    red blood cells" includes the target cells); a single object of a broader term also names
    its type. Names in ``order`` (e.g. the detection classes) come first, the rest
    alphabetically.
    """
    from unihema.data import vocab

    members: Dict[str, List[int]] = {}
    for i, lab in enumerate(labels):
        for name in [lab] + vocab.ancestors(lab):
            members.setdefault(name, []).append(i)
    rank = {n: k for k, n in enumerate(order)}
    out = []
    for name in sorted(members, key=lambda n: (rank.get(n, len(rank)), n)):
        idx = members[name]
        text = f"{len(idx)} {plural(name, len(idx))}"
        if len(idx) == 1:
            x0, y0, x1, y1 = boxes[idx[0]]
            text += " " + location_name((x0 + x1) / 2, (y0 + y1) / 2, width, height)
            if labels[idx[0]] != name:  # "1 white blood cell top left, a monocyte"
                text += f", {article(labels[idx[0]])} {labels[idx[0]]}"
        out.append((name, text))
    return out


_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_SINGULAR = {v: k for k, v in _IRREGULAR_PLURALS.items()}


def _word_forms(word: str) -> set:
    """A question word and the singular forms it may stand for (``cells`` -> ``cell``)."""
    forms = {word, _SINGULAR.get(word, word)}
    if word.endswith("es"):
        forms.add(word[:-2])
    if word.endswith("s"):
        forms.add(word[:-1])
    return forms


def relevant_entries(entries: Sequence[Entry], question: str) -> List[Entry]:
    """The entries whose key the question names (its words, in order, singular or plural),
    leaving out a match inside a longer one ("lymphocyte" when "atypical lymphocyte" is asked).
    ``"How many target cells are there?"`` keeps ``("target cell", "12 target cells")``."""
    words = [_word_forms(w) for w in _WORD.findall(question.lower())]
    spans = []
    for key, text in entries:
        kw = _WORD.findall(key.lower())
        for s in range(len(words) - len(kw) + 1):
            if kw and all(k in words[s + j] for j, k in enumerate(kw)):
                spans.append((s, s + len(kw), key, text))
                break
    keep = [e for e in spans
            if not any(o is not e and o[0] <= e[0] and e[1] <= o[1] and o[1] - o[0] > e[1] - e[0]
                       for o in spans)]
    return [(k, t) for _, _, k, t in keep]


def reading_text(entries: Sequence[Entry], question: Optional[str] = None) -> str:
    """The reading as the prompt carries it: every entry, or with ``question`` only those it
    names (:func:`relevant_entries`); ``"nothing"`` when none is left."""
    if question is not None:
        entries = relevant_entries(entries, question)
    return "; ".join(t for _, t in entries) or "nothing"


def report_field(labels: Sequence[str], boxes: Sequence[Sequence[float]],
                 order: Sequence[str] = ()) -> str:
    """The field report (:func:`describe_field`) of the cells ``labels`` at ``boxes`` (xyxy):
    red cells, white cells and platelets counted by lineage, abnormal red cells listed by type
    (``order`` first, the rest alphabetically), white cells in reading order (top to bottom,
    then left to right), parasites counted as infected red cells. The synthetic generator
    writes its reports with it, and the model its own from what it reads."""
    from unihema.data import vocab

    reds = [lab for lab in labels if vocab.is_a(lab, "red blood cell")]
    whites = sorted((i for i, lab in enumerate(labels) if vocab.is_a(lab, "white blood cell")),
                    key=lambda i: (boxes[i][1] + boxes[i][3], boxes[i][0]))
    rank = {n: k for k, n in enumerate(order)}
    abnormal: Dict[str, int] = {}
    for lab in sorted((lab for lab in reds if lab != "red blood cell"),
                      key=lambda n: (rank.get(n, len(rank)), n)):
        abnormal[lab] = abnormal.get(lab, 0) + 1
    return describe_field(
        {"red blood cell": len(reds), "white blood cell": len(whites),
         "platelet": sum(vocab.is_a(lab, "platelet") for lab in labels)},
        infected=sum(vocab.is_a(lab, "malaria parasite") for lab in labels),
        white_cells=[labels[i] for i in whites], red_morphologies=abnormal)


def fill_hints(masked: str, report: str, context: int = 3, longest: int = 8) -> str:
    """For each blank of ``masked`` (T5 sentinels), the words of ``report`` that stand where
    the blank stands: ``"<extra_id_0> 32 <extra_id_1> target cells"``.

    A blank is placed by the words around it: the report is searched (left to right, after the
    previous blank's passage) for up to ``context`` words before the blank, shortening the
    context until it is found; the passage runs to where the words after the blank resume, at
    most ``longest`` words. A blank that cannot be placed gets an empty passage.
    """
    words = masked.split()
    rep = report.split()
    out: List[str] = []
    pos = 0
    for i, w in enumerate(words):
        if not w.startswith("<extra_id_"):
            continue
        left: List[str] = []
        for v in reversed(words[:i]):
            if v.startswith("<extra_id_") or len(left) == context:
                break
            left.insert(0, v)
        right: List[str] = []
        for v in words[i + 1:]:
            if v.startswith("<extra_id_") or len(right) == context:
                break
            right.append(v)
        start = None if left else pos
        for n in range(len(left), 0, -1):
            hit = _find(rep, left[len(left) - n:], pos)
            if hit is not None:
                start = hit + n
                break
        passage: List[str] = []
        if start is not None:
            end = min(len(rep), start + longest)
            for n in range(len(right), 0, -1):
                hit = _find(rep, right[:n], start, end + n)
                if hit is not None:
                    end = hit
                    break
            passage = rep[start:end]
            pos = start + len(passage)
        out.append(" ".join([w] + passage))
    return " ".join(out)


def _find(words: Sequence[str], seq: Sequence[str], start: int, stop: Optional[int] = None
          ) -> Optional[int]:
    """First index ``>= start`` where ``seq`` occurs in ``words`` (ending by ``stop``)."""
    stop = len(words) if stop is None else min(stop, len(words))
    for i in range(start, stop - len(seq) + 1):
        if list(words[i:i + len(seq)]) == list(seq):
            return i
    return None
