"""What the Python API checks before and after the model answers.

Every result of :class:`~unihema.api.UniHemaPipeline` carries ``"warnings"``, a list of
``{"code": str, "message": str}``: a result is returned, but something about the input or
the answer means it should not be trusted as it stands. :data:`WARNINGS` lists every code
with its meaning (docs/model.md, "Warnings", is the same table). Input that cannot be
answered at all (a string instead of a label list, a duplicated label) raises ``ValueError``
naming the argument and what was expected.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional

from unihema.data import vocab

from unihema.data.text import language

#: An image whose shorter side is under this many pixels holds less than one cell.
MIN_SIDE = 16
#: Shrinking an input this many times more than the training images were shrunk is flagged.
MAX_SHRINK = 4.0
#: A statistic this many training standard deviations away is flagged.
MAX_Z = 4.0

#: code -> what it means. Kept in step with the table in docs/model.md.
WARNINGS: Dict[str, str] = {
    "image_too_small": f"the image's shorter side is under {MIN_SIDE} pixels: smaller than one "
                       "cell at the magnifications the model knows; nothing in it can be read",
    "downscaled": f"the image was shrunk more than {MAX_SHRINK:g} times past the scale of the "
                  "training images; small objects (platelets, parasites, whole cells) vanish "
                  "and counts fall",
    "unlike_training": f"a colour or contrast statistic of the image lies more than {MAX_Z:g} "
                       "standard deviations from the training images' (another stain, "
                       "instrument or kind of image)",
    "question_empty": "the question is empty",
    "question_unknown": "the question follows none of the question kinds the model was "
                        "trained on (how many / is there / what type of ... is this / what is "
                        "the ... of / where is), or names a term outside the vocabulary",
    "answer_mismatch": "the answer is not of the kind the question asks for (a number for a "
                       "'how many', yes or no for an 'is there', a name for a 'what type')",
    "single_label": "one candidate label: classify always gives it probability 1",
    "unknown_label": "a class or label outside the vocabulary (unihema.data.vocab); the model "
                     "never saw it named and its scores or pixels mean nothing",
    "description_rewritten": "the generated sentence contradicted the predicted attributes "
                             "or type, or was cut at the length limit; the sentence returned "
                             "is written from the predicted attributes instead",
    "trust_not_covered": "the labels are not the classes the model's trust state was fitted on "
                         "(nor a subset of them): no prediction set or unknown score is given",
    "trust_set_outside_labels": "the trust state's prediction set, over all the classes it "
                                "was fitted on, holds none of the labels asked for: the cell "
                                "is likely none of them",
    "overlay_downscaled": "the overlay was drawn smaller than the input (longest side capped "
                          "at 4096 pixels, unihema.evaluation.visualize.OVERLAY_MAX_SIDE)",
}


def warning(code: str, message: str) -> Dict[str, str]:
    """One warning entry; ``code`` must be a key of :data:`WARNINGS`."""
    if code not in WARNINGS:
        raise KeyError(f"unknown warning code '{code}'; known: {sorted(WARNINGS)}")
    return {"code": code, "message": message}


# ----------------------------------------------------------------------------- images
def image_warnings(height: int, width: int, side: int, meta: Mapping[str, Any], kind: str,
                   stats_check: Optional[tuple]) -> List[Dict[str, str]]:
    """Warnings about an input of ``height`` x ``width`` pixels resized to longer side
    ``side`` for a ``kind`` task (``"field"`` or ``"cell"``) of a checkpoint with metadata
    ``meta``; ``stats_check``: :func:`unihema.data.image_stats.compare`'s result."""
    out = []
    if min(height, width) < MIN_SIDE:
        out.append(warning("image_too_small", f"the image is {width}x{height} pixels; a cell "
                           f"needs at least {MIN_SIDE} pixels across, so the answer is not "
                           f"about anything visible"))
    shrink = max(height, width) / max(side, 1)
    # the training images were themselves shrunk (a 640 px field to 256): compare to that
    train_side = ((meta.get("image_stats") or {}).get(kind) or {}).get("side")
    train_shrink = max(1.0, train_side / max(side, 1)) if train_side else 1.0
    if shrink > MAX_SHRINK * train_shrink:
        out.append(warning("downscaled", f"the {width}x{height} image was shrunk "
                           f"{shrink:.1f}x to {side} px (training images about "
                           f"{train_shrink:.1f}x); cut it into fields near "
                           f"{int(side * train_shrink)} px and ask about each"))
    if stats_check is not None:
        name, value, mean, z = stats_check
        if z > MAX_Z:
            out.append(warning("unlike_training", f"{name} is {value:.2f} against "
                               f"{mean:.2f} on the training {kind} images ({z:.1f} standard "
                               f"deviations away): another stain or kind of image?"))
    return out


# ----------------------------------------------------------------------------- label lists
def check_labels(labels: Any, argument: str, *, allow_single: bool = True
                 ) -> tuple:
    """``(names, warnings)`` of a class or label list given as ``argument``.

    Raises:
        ValueError: ``labels`` is a string (it would be read letter by letter), not a list of
            strings, empty, or names a label twice (the two would share the probability).
    """
    if isinstance(labels, str):
        raise ValueError(f"{argument} must be a list of names, got the string {labels!r}; "
                         f"write [{labels!r}] for one name")
    try:
        names = list(labels)
    except TypeError:
        raise ValueError(f"{argument} must be a list of names, got "
                         f"{type(labels).__name__}") from None
    bad = [n for n in names if not isinstance(n, str) or not n.strip()]
    if bad:
        raise ValueError(f"{argument} must hold non-empty strings, got {bad[:3]!r}")
    if not names:
        raise ValueError(f"{argument} is empty; give at least one name")
    seen: Dict[str, str] = {}
    for n in names:  # spellings of one term ("Platelets", "platelet") are one name
        key = _canonical(n) or vocab.normalize(n)
        if key in seen:
            raise ValueError(f"{argument} names {key!r} twice (as {seen[key]!r} and {n!r}); "
                             f"each name must appear once")
        seen[key] = n
    out = []
    if len(names) == 1 and not allow_single:
        out.append(warning("single_label", f"{argument} has one label, {names[0]!r}: it "
                           f"always gets probability 1; give the alternatives too"))
    unknown = [n for n in names if n != "background" and not _known(n)]
    if unknown:
        out.append(warning("unknown_label", f"{argument}: {unknown} are not in the vocabulary "
                           f"(unihema.data.vocab); the model never saw them named"))
    return names, out


def _canonical(name: str) -> Optional[str]:
    """The vocabulary term ``name`` spells, or ``None``."""
    try:
        return vocab.canonical(name)
    except KeyError:
        return None


def _known(name: str) -> bool:
    return _canonical(name) is not None


# ----------------------------------------------------------------------------- questions
_ATTRIBUTE_WORDS = {language.attribute_words(a): a for a in vocab.ATTRIBUTES}
#: (kind, pattern, group naming a vocabulary term or attribute); the training templates
#: (unihema.data.text.language.qa_*) with their wording variants
_KINDS = (
    ("count", re.compile(r"^how many (.+?)(?: are| is)?(?: there)?(?: in (?:the|this) "
                         r"(?:image|field|picture|smear))?\s*\??$"), 1),
    ("presence", re.compile(r"^(?:is|are) there (?:an? |any )?(.+?)(?: in (?:the|this) "
                            r"(?:image|field|picture|smear))?\s*\??$"), 1),
    ("type", re.compile(r"^what (?:type|kind) of (.+?) is (?:this|it|shown)\s*\??$"), 1),
    ("attribute", re.compile(r"^what is the (.+?) of the (.+?)\s*\??$"), 1),
    ("location", re.compile(r"^where is the (.+?)(?: in (?:the|this) "
                            r"(?:image|field|picture|smear))?\s*\??$"), 1),
)


def question_kind(question: str) -> Optional[str]:
    """The trained question kind ``question`` follows (``"count"``, ``"presence"``,
    ``"type"``, ``"attribute"``, ``"location"``) with a subject the model knows, else
    ``None``."""
    q = re.sub(r"\s+", " ", question.strip().lower())
    for kind, pattern, group in _KINDS:
        m = pattern.match(q)
        if not m:
            continue
        subject = m.group(group)
        if kind == "attribute":
            return kind if subject.replace("colour", "color") in _ATTRIBUTE_WORDS else None
        return kind if _known(subject) else None
    return None


def question_warnings(question: str) -> List[Dict[str, str]]:
    """``question_empty`` or ``question_unknown`` for a question the model was not trained
    to answer; ``[]`` otherwise."""
    if not question.strip():
        return [warning("question_empty", "the question is empty; the answer is a guess")]
    if question_kind(question) is None:
        return [warning("question_unknown", f"{question!r} follows none of the trained "
                        f"question kinds, e.g. 'How many platelets are in the image?', 'Is "
                        f"there a ring form in the image?', 'What type of white blood cell "
                        f"is this?'; the answer is not to be trusted")]
    return []


_LOCATIONS = {f"{r} {c}" for r in ("top", "middle", "bottom") for c in ("left", "center",
                                                                         "right")}
_LOCATIONS |= {"center"}


def answer_warnings(question: str, answer: str) -> List[Dict[str, str]]:
    """``answer_mismatch`` when ``answer`` is not of the kind ``question`` asks for."""
    kind = question_kind(question) if question.strip() else None
    a = answer.strip().lower()
    expected = None
    if kind == "count" and not a.isdigit():
        expected = "a number"
    elif kind == "presence" and a not in ("yes", "no"):
        expected = "yes or no"
    elif kind in ("type", "attribute") and (not a or a.isdigit() or a in ("yes", "no")):
        expected = "a name"
    elif kind == "location" and not any(a.startswith(p) for p in _LOCATIONS):
        expected = "a place such as 'top left'"
    if expected is None:
        return []
    return [warning("answer_mismatch", f"the answer {answer!r} is not {expected}, which "
                    f"{question!r} asks for")]


# ----------------------------------------------------------------------------- descriptions
#: attributes whose words a sentence is checked for (the granule ones share words with them)
CHECKED_ATTRIBUTES = ("cell_size", "cell_shape", "nucleus_shape", "chromatin_density",
                      "nuclear_cytoplasmic_ratio", "cytoplasm_colour", "cytoplasm_vacuole",
                      "cytoplasm_texture")


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9-]+", text.lower())) + " "


def _phrase(attribute: str, value: str) -> str:
    """The words :func:`unihema.data.text.language.describe_cell` uses for a value."""
    return _words(language._ATTR_PHRASES.get(attribute, {}).get(value, value))


def description_conflicts(text: str, attributes: Mapping[str, str], label: Optional[str]
                          ) -> List[str]:
    """What in the generated sentence ``text`` contradicts the predicted ``attributes`` or
    ``label``: another value of a checked attribute named (and not the predicted one),
    another cell type named; ``"cut"`` when it does not end as a sentence. ``[]`` when it
    agrees."""
    out = [] if text.strip().endswith(".") else ["cut"]
    t = _words(text)
    for attr in CHECKED_ATTRIBUTES:
        if attr not in attributes:
            continue
        rest = t
        for other in CHECKED_ATTRIBUTES:  # another attribute's phrases ("a round nucleus")
            for v in vocab.ATTRIBUTES[other] if other != attr else ():
                if len(_phrase(other, v).split()) > 1:
                    rest = rest.replace(_phrase(other, v), " | ")
        found = [v for v in vocab.ATTRIBUTES[attr] if _phrase(attr, v) in rest]
        found = [v for v in found if not any(w != v and _phrase(attr, v) in _phrase(attr, w)
                                             for w in found)]
        if found and attributes[attr] not in found:
            out.append(f"{attr} {found[0]} (predicted {attributes[attr]})")
    if label:
        named = [n for n in vocab.names(["white cell", "red cell"]) if _words(n) in t]
        named = [n for n in named if not any(o != n and _words(n) in _words(o) for o in named)]
        out += [f"type {n} (classified {label})" for n in named
                if vocab.is_canonical(label) and not (vocab.is_a(label, n)
                                                      or vocab.is_a(n, label))]
    return out
