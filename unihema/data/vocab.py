"""The canonical hematology vocabulary: one name per concept, with synonyms.

Every label in a :class:`~unihema.data.sample.UnifiedSample` is a canonical term. Adapters turn
raw names into canonical ones with :func:`canonical`, which knows general synonyms
(``"Platelets"`` -> ``"platelet"``, ``"NGS"`` -> ``"segmented neutrophil"``). Names whose meaning
depends on the source (``"normal"``, ``"other"``, a numeric code) are mapped by the adapter
itself to a canonical term listed here.

Canonical names are lower case and human readable, because they are also the text the model
reads: detection, segmentation and classification score visual features against the text
embeddings of these names (open vocabulary).

Morphology attributes follow one schema, :data:`ATTRIBUTES` (name -> allowed values), shared by
the synthetic generator and the attribute-annotated public sets.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

CATEGORIES = (
    "red cell",
    "white cell",
    "platelet",
    "parasite",
    "structure",
    "disease",
    "genotype",
    "other",
)


@dataclass(frozen=True)
class Term:
    """A canonical term: its name, its category and the raw spellings that mean it."""

    name: str
    category: str
    synonyms: Tuple[str, ...] = ()
    description: str = ""


def _t(name: str, category: str, *synonyms: str, description: str = "") -> Term:
    return Term(name, category, tuple(synonyms), description)


# The table is grouped by category; within a group, general terms come first.
TERMS: Tuple[Term, ...] = (
    # ---------------------------------------------------------------- red cells
    _t("red blood cell", "red cell", "rbc", "rbcs", "erythrocyte", "red cell", "normocyte",
       "normal red blood cell", "normal rbc", "circular rbc", "discocyte",
       "uninfected", "uninfected red blood cell", "healthy red blood cell",
       description="mature erythrocyte, biconcave disc with central pallor"),
    _t("macrocyte", "red cell", "macrocytic", "macrocytes"),
    _t("microcyte", "red cell", "microcytic", "microcytes"),
    _t("spherocyte", "red cell", "spherocytes", "spherocytic"),
    _t("target cell", "red cell", "codocyte", "target", "target cells"),
    _t("stomatocyte", "red cell", "stomatocytes"),
    _t("ovalocyte", "red cell", "ovalocytes", "oval cell"),
    _t("elliptocyte", "red cell", "elliptocytes", "pencil cell", "pencil"),
    _t("teardrop cell", "red cell", "teardrop", "tear drop", "dacrocyte", "dacrocytes",
       "teardrop cells"),
    _t("burr cell", "red cell", "echinocyte", "echinocytes", "burr", "crenated cell"),
    _t("acanthocyte", "red cell", "acanthocytes", "spur cell"),
    _t("schistocyte", "red cell", "schistocytes", "fragmented cell", "fragment", "helmet cell",
       "keratocyte"),
    _t("sickle cell", "red cell", "sickle", "drepanocyte", "elongated rbc",
       "sickled cell"),
    _t("hypochromic cell", "red cell", "hypochromia", "hypochromic"),
    _t("poikilocyte", "red cell", "other rbc", "other red blood cell", "abnormal red blood cell",
       description="red cell of abnormal shape not in a named class"),
    _t("unclassified red blood cell", "red cell", "uncategorised", "uncategorized",
       "uncategorised rbc"),
    _t("infected red blood cell", "red cell", "parasitized", "parasitised", "infected rbc",
       "parasitized red blood cell"),
    _t("erythroblast", "red cell", "ebo", "nucleated red blood cell", "nrbc",
       "normoblast", "erythroblasts"),
    _t("proerythroblast", "red cell", "peb", "pronormoblast"),
    _t("nucleated red cell precursor", "red cell", "erythroid precursor",
       description="erythroblasts at any stage (not counted as red blood cells)"),
    # ---------------------------------------------------------------- white cells
    _t("white blood cell", "white cell", "wbc", "wbcs", "leukocyte", "leucocyte", "white cell",
       "leukocytes"),
    _t("neutrophil", "white cell", "neutrophils", "neut", "neu", "polymorphonuclear"),
    _t("segmented neutrophil", "white cell", "ngs", "neutrophil segmented",
       "segmented neutrophils", "seg"),
    _t("band neutrophil", "white cell", "ngb", "band", "band cell", "neutrophil band",
       "band neutrophils", "stab cell"),
    _t("lymphocyte", "white cell", "lymphocytes", "lymp", "lym", "lyt", "typical lymphocyte",
       "normal lymphocyte", "normal b cell", "normal b lymphocyte"),
    _t("atypical lymphocyte", "white cell", "lya", "reactive lymphocyte",
       "atypical lymphocytes", "variant lymphocyte"),
    _t("immature lymphocyte", "white cell", "lyi"),
    _t("monocyte", "white cell", "monocytes", "mono", "mon"),
    _t("eosinophil", "white cell", "eosinophils", "eosi", "eos", "eo"),
    _t("abnormal eosinophil", "white cell", "abe"),
    _t("basophil", "white cell", "basophils", "baso", "bas", "ba"),
    _t("blast", "white cell", "bla", "blasts", "blast cell"),
    _t("myeloblast", "white cell", "myo", "myeloblasts"),
    _t("lymphoblast", "white cell", "lymphoblasts", "all blast", "malignant lymphoblast"),
    _t("monoblast", "white cell", "mob", "monoblasts"),
    _t("promyelocyte", "white cell", "pmo", "promyelocytes"),
    _t("bilobed promyelocyte", "white cell", "pmb", "promyelocyte bilobed"),
    _t("abnormal promyelocyte", "white cell", "abnormal promyelocytes", "atypical promyelocyte",
       description="the hypergranular promyelocyte of acute promyelocytic leukemia"),
    _t("myelocyte", "white cell", "myb", "myelocytes"),
    _t("metamyelocyte", "white cell", "mmz", "metamyelocytes"),
    _t("immature granulocyte", "white cell", "ig", "immature granulocytes"),
    _t("prolymphocyte", "white cell", "prolymphocytes"),
    _t("promonocyte", "white cell", "promonocytes"),
    _t("plasma cell", "white cell", "plm", "plasma cells", "plasmacyte", "myeloma cell"),
    _t("hairy cell", "white cell", "hac", "hairy cells"),
    _t("faggot cell", "white cell", "fgc"),
    _t("smudge cell", "white cell", "ksc", "smudge", "basket cell"),
    _t("large granular lymphocyte", "white cell", "lgl"),
    # ---------------------------------------------------------------- platelets
    _t("platelet", "platelet", "platelets", "plt", "thrombocyte", "thrombocytes"),
    _t("giant platelet", "platelet", "large platelet"),
    _t("platelet clump", "platelet", "platelet aggregate"),
    # ---------------------------------------------------------------- parasites
    _t("malaria parasite", "parasite", "parasite", "plasmodium", "malaria",
       "plasmodium parasite"),
    _t("ring form", "parasite", "ring", "rings", "ring stage", "early trophozoite"),
    _t("trophozoite", "parasite", "trophozoites", "troph", "late trophozoite"),
    _t("schizont", "parasite", "schizonts"),
    _t("gametocyte", "parasite", "gametocytes", "gamete"),
    _t("plasmodium falciparum", "parasite", "p. falciparum", "falciparum"),
    _t("plasmodium vivax", "parasite", "p. vivax", "vivax"),
    _t("plasmodium malariae", "parasite", "p. malariae", "malariae"),
    _t("plasmodium ovale", "parasite", "p. ovale", "ovale"),
    _t("babesia", "parasite", "babesia parasite"),
    _t("leishmania", "parasite", "leishmania parasite"),
    _t("toxoplasma", "parasite", "toxoplasma gondii"),
    _t("trichomonad", "parasite", "trichomonas", "trichomonads"),
    _t("trypanosome", "parasite", "trypanosoma", "trypanosomes"),
    # ---------------------------------------------------------------- structures (masks)
    _t("background", "structure", "bg", "none"),
    _t("nucleus", "structure", "nuclei", "white cell nucleus", "wbc nucleus", "nuclear region"),
    _t("cytoplasm", "structure", "white cell cytoplasm", "wbc cytoplasm", "cell body"),
    _t("cell", "structure", "whole cell", "cell region", "foreground"),
    # ---------------------------------------------------------------- diseases (smear level)
    _t("hereditary elliptocytosis", "disease"),
    _t("hereditary spherocytosis", "disease"),
    _t("iron deficiency anemia", "disease", "ida", "iron deficiency anaemia"),
    _t("megaloblastic anemia", "disease", "megaloblastic anaemia"),
    _t("thalassemia", "disease", "thalassaemia"),
    _t("anemia", "disease", "anaemia", "anemic", "anaemic"),
    _t("healthy", "disease", "normal smear", "healthy control", "control", "healthy donor"),
    _t("acute myeloid leukemia", "disease", "aml", "acute myeloid leukaemia"),
    _t("acute promyelocytic leukemia", "disease", "apl", "acute promyelocytic leukaemia"),
    _t("acute lymphoblastic leukemia", "disease", "acute lymphoblastic leukaemia"),
    _t("multiple myeloma", "disease", "myeloma"),
    _t("malaria infection", "disease"),
    # ---------------------------------------------------------------- genotypes (patient level)
    _t("pml::rara", "genotype", "pml-rara", "pml rara"),
    _t("npm1", "genotype", "npm1 mutated", "npm1 mutation"),
    _t("cbfb::myh11", "genotype", "cbfb-myh11", "cbfb myh11"),
    _t("runx1::runx1t1", "genotype", "runx1-runx1t1", "runx1 runx1t1"),
    # ---------------------------------------------------------------- other
    _t("artefact", "other", "art", "artifact", "artefacts", "artifacts", "debris"),
    _t("unidentified cell", "other", "nif", "not identifiable", "difficult", "unknown cell"),
    _t("other cell", "other", "oth", "other"),
)

#: Morphology attribute schema: attribute name -> allowed values (shared across sources).
ATTRIBUTES: Dict[str, Tuple[str, ...]] = {
    "cell_size": ("small", "big"),
    "cell_shape": ("round", "irregular"),
    "nucleus_shape": (
        "unsegmented-round",
        "unsegmented-indented",
        "unsegmented-band",
        "segmented-bilobed",
        "segmented-multilobed",
        "irregular",
    ),
    "nuclear_cytoplasmic_ratio": ("low", "high"),
    "chromatin_density": ("densely", "loosely"),
    "cytoplasm_vacuole": ("no", "yes"),
    "cytoplasm_texture": ("clear", "frosted"),
    "cytoplasm_colour": ("light blue", "blue", "purple blue"),
    "granule_type": ("nil", "small", "round", "coarse"),
    "granule_colour": ("nil", "pink", "purple", "red"),
    "granularity": ("no", "yes"),
}


#: Is-a hierarchy: term -> its broader term. Counting "red blood cells" counts every red cell
#: whatever its morphology; a detection prompt naming "white blood cell" covers every type.
PARENTS: Dict[str, str] = {
    **{n: "red blood cell" for n in (
        "macrocyte", "microcyte", "spherocyte", "target cell", "stomatocyte", "ovalocyte",
        "elliptocyte", "teardrop cell", "burr cell", "acanthocyte", "schistocyte", "sickle cell",
        "hypochromic cell", "poikilocyte", "unclassified red blood cell",
        "infected red blood cell")},
    **{n: "white blood cell" for n in (
        "neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil", "blast",
        "promyelocyte", "myelocyte", "metamyelocyte", "immature granulocyte", "plasma cell",
        "hairy cell", "faggot cell", "smudge cell", "promonocyte")},
    "segmented neutrophil": "neutrophil",
    "band neutrophil": "neutrophil",
    "atypical lymphocyte": "lymphocyte",
    "immature lymphocyte": "lymphocyte",
    "prolymphocyte": "lymphocyte",
    "large granular lymphocyte": "lymphocyte",
    "abnormal eosinophil": "eosinophil",
    "myeloblast": "blast",
    "lymphoblast": "blast",
    "monoblast": "blast",
    "bilobed promyelocyte": "promyelocyte",
    "abnormal promyelocyte": "promyelocyte",
    "erythroblast": "nucleated red cell precursor",
    "proerythroblast": "nucleated red cell precursor",
    "giant platelet": "platelet",
    "platelet clump": "platelet",
    **{n: "malaria parasite" for n in (
        "ring form", "trophozoite", "schizont", "gametocyte", "plasmodium falciparum",
        "plasmodium vivax", "plasmodium malariae", "plasmodium ovale")},
    "thalassemia": "anemia",
    "iron deficiency anemia": "anemia",
    "megaloblastic anemia": "anemia",
    "hereditary elliptocytosis": "anemia",
    "hereditary spherocytosis": "anemia",
    "acute promyelocytic leukemia": "acute myeloid leukemia",
}


class UnknownLabelError(KeyError):
    """A raw label has no canonical term; the message suggests the closest terms."""

    def __str__(self) -> str:  # KeyError quotes its message; print it plainly
        return str(self.args[0]) if self.args else ""


def normalize(raw: str) -> str:
    """Lower-case, unify separators and spacing: ``"Red_Blood-Cells "`` -> ``"red blood cells"``."""
    s = str(raw).strip().lower().replace("_", " ")
    s = re.sub(r"(?<=[a-z])-(?=[a-z])", " ", s) if "::" not in s else s
    return re.sub(r"\s+", " ", s)


def _build() -> Tuple[Dict[str, Term], Dict[str, str]]:
    by_name: Dict[str, Term] = {}
    lookup: Dict[str, str] = {}
    for term in TERMS:
        if term.category not in CATEGORIES:
            raise ValueError(f"term '{term.name}' has unknown category '{term.category}'")
        if term.name in by_name:
            raise ValueError(f"canonical term '{term.name}' is listed twice")
        by_name[term.name] = term
    for child, parent in PARENTS.items():
        if child not in by_name or parent not in by_name:
            raise ValueError(f"PARENTS entry {child!r} -> {parent!r} names a non-canonical term")
    for term in TERMS:
        for spelling in (term.name,) + term.synonyms:
            key = normalize(spelling)
            if key in lookup and lookup[key] != term.name:
                raise ValueError(
                    f"spelling '{spelling}' maps to both '{lookup[key]}' and '{term.name}'"
                )
            lookup[key] = term.name
    return by_name, lookup


_BY_NAME, _LOOKUP = _build()


def is_canonical(name: str) -> bool:
    """True when ``name`` is a canonical term exactly as spelled."""
    return name in _BY_NAME


def canonical(raw: str, extra: Optional[Dict[str, str]] = None) -> str:
    """Map a raw label to its canonical term.

    Args:
        raw: the label as the source writes it (any case, ``_``/``-``/space separators).
        extra: source-specific mapping consulted first (raw -> canonical), for names whose
            meaning depends on the dataset (``{"0": "red blood cell"}``).

    Raises:
        UnknownLabelError: with the closest canonical terms, when nothing matches.
    """
    if extra:
        for k, v in extra.items():
            if normalize(k) == normalize(raw):
                if not is_canonical(v):
                    raise UnknownLabelError(f"mapping target '{v}' (for '{raw}') is not canonical")
                return v
    key = normalize(raw)
    if key in _LOOKUP:
        return _LOOKUP[key]
    if key.endswith("s") and key[:-1] in _LOOKUP:  # plain plurals
        return _LOOKUP[key[:-1]]
    close = difflib.get_close_matches(key, list(_LOOKUP), n=3, cutoff=0.6)
    hint = ", ".join(f"'{c}' -> '{_LOOKUP[c]}'" for c in close) or "none close"
    raise UnknownLabelError(
        f"unknown label '{raw}' (normalized '{key}'); closest known spellings: {hint}. "
        f"Add a source-specific mapping in the adapter or a synonym in unihema/data/vocab.py"
    )


def term(name: str) -> Term:
    """The :class:`Term` of a canonical name."""
    if name not in _BY_NAME:
        raise UnknownLabelError(f"'{name}' is not a canonical term; see unihema.data.vocab.TERMS")
    return _BY_NAME[name]


def category(name: str) -> str:
    """Category of a canonical term (``"white cell"``, ``"parasite"``...)."""
    return term(name).category


def names(categories: Optional[Iterable[str]] = None) -> List[str]:
    """All canonical names, optionally only those of the given categories, in table order."""
    if categories is None:
        return [t.name for t in TERMS]
    cats = set(categories)
    unknown = cats - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown categories {sorted(unknown)}; valid: {CATEGORIES}")
    return [t.name for t in TERMS if t.category in cats]


def check_attributes(attrs: Dict[str, str]) -> List[str]:
    """Problems with a morphology attribute dict (unknown names or values); empty when valid."""
    problems = []
    for k, v in attrs.items():
        if k not in ATTRIBUTES:
            problems.append(f"unknown attribute '{k}'; valid: {', '.join(ATTRIBUTES)}")
        elif v not in ATTRIBUTES[k]:
            problems.append(f"attribute {k}='{v}' is not one of {ATTRIBUTES[k]}")
    return problems


def ancestors(name: str) -> List[str]:
    """Broader terms of ``name``, nearest first: ``"segmented neutrophil"`` ->
    ``["neutrophil", "white blood cell"]``."""
    term(name)
    out: List[str] = []
    while name in PARENTS:
        name = PARENTS[name]
        out.append(name)
    return out


def is_a(name: str, other: str) -> bool:
    """True when ``name`` is ``other`` or a narrower term of it."""
    return name == other or other in ancestors(name)
