import pytest

from unihema.data import vocab
from unihema.data.vocab import ATTRIBUTES, UnknownLabelError, canonical

# Raw label names as the public datasets write them (../shared/DATASETS.md) -> canonical term.
RAW_TO_CANONICAL = {
    # detection sets
    "RBC": "red blood cell", "WBC": "white blood cell", "Platelets": "platelet",
    "red blood cell": "red blood cell", "leukocyte": "white blood cell",
    "gametocyte": "gametocyte", "ring": "ring form", "trophozoite": "trophozoite",
    "schizont": "schizont", "difficult": "unidentified cell", "parasite": "malaria parasite",
    "sickle cell": "sickle cell", "blast": "blast",
    # Chula RBC-12 types
    "macrocyte": "macrocyte", "microcyte": "microcyte", "spherocyte": "spherocyte",
    "target cell": "target cell", "stomatocyte": "stomatocyte", "ovalocyte": "ovalocyte",
    "teardrop": "teardrop cell", "burr cell": "burr cell", "schistocyte": "schistocyte",
    "uncategorised": "unclassified red blood cell", "hypochromia": "hypochromic cell",
    "elliptocyte": "elliptocyte",
    # diseases and patient labels
    "iron deficiency anemia": "iron deficiency anemia",
    "megaloblastic anemia": "megaloblastic anemia", "thalassemia": "thalassemia",
    "hereditary elliptocytosis": "hereditary elliptocytosis",
    "hereditary spherocytosis": "hereditary spherocytosis",
    "PML::RARA": "pml::rara", "NPM1": "npm1", "CBFB::MYH11": "cbfb::myh11",
    "RUNX1::RUNX1T1": "runx1::runx1t1", "control": "healthy", "APL": "acute promyelocytic leukemia",
    "AML": "acute myeloid leukemia", "Anemic": "anemia",
    # malaria species
    "falciparum": "plasmodium falciparum", "malariae": "plasmodium malariae",
    "ovale": "plasmodium ovale", "vivax": "plasmodium vivax",
    # segmentation structures
    "background": "background", "nucleus": "nucleus", "cytoplasm": "cytoplasm",
    # white cells (PBC, Raabin, LISC, BCCD-WBC, Zheng)
    "basophil": "basophil", "eosinophil": "eosinophil", "erythroblast": "erythroblast",
    "ig": "immature granulocyte", "lymphocyte": "lymphocyte", "monocyte": "monocyte",
    "neutrophil": "neutrophil", "platelet": "platelet", "EOSINOPHIL": "eosinophil",
    "LYMPHOCYTE": "lymphocyte", "MONOCYTE": "monocyte", "NEUTROPHIL": "neutrophil",
    "Baso": "basophil", "eosi": "eosinophil", "lymp": "lymphocyte", "mono": "monocyte",
    "neut": "neutrophil",
    # Matek codes (bone marrow and AML-LMU)
    "ABE": "abnormal eosinophil", "ART": "artefact", "BAS": "basophil", "BLA": "blast",
    "EBO": "erythroblast", "EOS": "eosinophil", "FGC": "faggot cell", "HAC": "hairy cell",
    "KSC": "smudge cell", "LYI": "immature lymphocyte", "LYT": "lymphocyte",
    "MMZ": "metamyelocyte", "MON": "monocyte", "MYB": "myelocyte", "NGB": "band neutrophil",
    "NGS": "segmented neutrophil", "NIF": "unidentified cell", "OTH": "other cell",
    "PEB": "proerythroblast", "PLM": "plasma cell", "PMO": "promyelocyte",
    "LYA": "atypical lymphocyte", "MOB": "monoblast", "MYO": "myeloblast",
    "PMB": "bilobed promyelocyte",
    # parasites (Li et al.) and NIH cells
    "babesia": "babesia", "leishmania": "leishmania", "plasmodium": "malaria parasite",
    "toxoplasma": "toxoplasma", "trichomonad": "trichomonad", "trypanosome": "trypanosome",
    "Parasitized": "infected red blood cell", "Uninfected": "red blood cell",
    # thalassemia / shape sets
    "pencil cell": "elliptocyte", "acanthocyte": "acanthocyte", "target": "target cell",
    "codocyte": "target cell", "echinocyte": "burr cell", "dacrocyte": "teardrop cell",
}

# Names whose meaning depends on the source: the adapter maps them, to these canonical terms.
CONTEXT_TARGETS = {
    "normal (Chula)": "red blood cell", "all (C-NMC)": "lymphoblast",
    "hem (C-NMC)": "lymphocyte", "circular (erythrocytesIDB)": "red blood cell",
    "elongated (erythrocytesIDB)": "sickle cell", "other (erythrocytesIDB)": "poikilocyte",
    "HE (Chula diseases)": "hereditary elliptocytosis", "blast (_1, ALL-IDB)": "lymphoblast",
    "multiple myeloma plasma cell (SegPC)": "plasma cell",
}


@pytest.mark.parametrize("raw,expected", sorted(RAW_TO_CANONICAL.items()))
def test_catalogue_labels_map_to_canonical(raw, expected):
    assert canonical(raw) == expected
    assert vocab.is_canonical(expected)


def test_context_dependent_targets_exist():
    for what, target in CONTEXT_TARGETS.items():
        assert vocab.is_canonical(target), what


def test_normalisation_and_plurals():
    assert canonical("Red_Blood-Cells ") == "red blood cell"
    assert canonical("  WBCs") == "white blood cell"
    assert canonical("Trophozoites") == "trophozoite"
    assert canonical("Gametocytes") == "gametocyte"


def test_extra_mapping_takes_precedence_and_is_checked():
    assert canonical("0", extra={"0": "red blood cell"}) == "red blood cell"
    assert canonical("Normal", extra={"normal": "lymphocyte"}) == "lymphocyte"
    with pytest.raises(UnknownLabelError, match="not canonical"):
        canonical("0", extra={"0": "red cell thing"})


def test_unknown_label_suggests_close_terms():
    with pytest.raises(UnknownLabelError) as err:
        canonical("neutrofil")
    assert "'neutrophil'" in str(err.value)
    assert "vocab.py" in str(err.value)


def test_every_term_is_lower_case_and_categorised():
    for t in vocab.TERMS:
        assert t.name == t.name.lower().strip(), t.name
        assert t.category in vocab.CATEGORIES
    wbc = vocab.names(["white cell"])
    assert "segmented neutrophil" in wbc and "red blood cell" not in wbc
    assert vocab.category("ring form") == "parasite"
    with pytest.raises(ValueError, match="unknown categories"):
        vocab.names(["cells"])


def test_attribute_schema_checks():
    good = {k: v[0] for k, v in ATTRIBUTES.items()}
    assert vocab.check_attributes(good) == []
    bad = vocab.check_attributes({"nucleus_shape": "square", "colour": "red"})
    assert any("nucleus_shape='square'" in p for p in bad)
    assert any("unknown attribute 'colour'" in p for p in bad)


def test_hierarchy():
    assert vocab.ancestors("segmented neutrophil") == ["neutrophil", "white blood cell"]
    assert vocab.is_a("target cell", "red blood cell")
    assert vocab.is_a("ring form", "malaria parasite")
    assert vocab.is_a("platelet", "platelet")
    assert not vocab.is_a("erythroblast", "red blood cell")  # precursors are not counted as RBCs
    assert not vocab.is_a("lymphocyte", "neutrophil")
    with pytest.raises(UnknownLabelError):
        vocab.ancestors("red cell thing")
