"""Cell types of the generator and their morphology-attribute distributions.

Each white-cell type has a distribution over every attribute of
:data:`unihema.data.vocab.ATTRIBUTES`; :func:`sample_white_attributes` draws one cell's values,
which :func:`unihema.synth.cells.draw_white_cell` then renders. Red cells are identified by their
morphology name alone.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

RED_MORPHOLOGIES = ("red blood cell", "target cell", "spherocyte", "elliptocyte", "sickle cell",
                    "schistocyte", "teardrop cell")
WHITE_TYPES = ("segmented neutrophil", "band neutrophil", "lymphocyte", "monocyte", "eosinophil",
               "basophil", "myeloblast", "promyelocyte", "atypical lymphocyte")

# Per-type attribute distributions. "granules" is joint over (granularity, type, colour) so that
# "no granularity" always comes with "nil" type and colour. Probabilities follow textbook
# descriptions (Bain, Blood Cells) sharpened so that the type stays readable from the pixels.
_G0 = ("no", "nil", "nil")
WHITE_PROFILES: Dict[str, Dict[str, Dict]] = {
    "segmented neutrophil": dict(
        cell_size={"big": .75, "small": .25}, cell_shape={"round": .9, "irregular": .1},
        nucleus_shape={"segmented-multilobed": .7, "segmented-bilobed": .3},
        nuclear_cytoplasmic_ratio={"low": .95, "high": .05},
        chromatin_density={"densely": .95, "loosely": .05},
        cytoplasm_vacuole={"no": .9, "yes": .1}, cytoplasm_texture={"clear": .8, "frosted": .2},
        cytoplasm_colour={"light blue": .85, "blue": .05, "purple blue": .1},
        granules={("yes", "small", "pink"): .85, ("yes", "small", "purple"): .05, _G0: .1}),
    "band neutrophil": dict(
        cell_size={"big": .75, "small": .25}, cell_shape={"round": .9, "irregular": .1},
        nucleus_shape={"unsegmented-band": .9, "unsegmented-indented": .1},
        nuclear_cytoplasmic_ratio={"low": .9, "high": .1},
        chromatin_density={"densely": .9, "loosely": .1},
        cytoplasm_vacuole={"no": .9, "yes": .1}, cytoplasm_texture={"clear": .8, "frosted": .2},
        cytoplasm_colour={"light blue": .85, "blue": .05, "purple blue": .1},
        granules={("yes", "small", "pink"): .85, ("yes", "small", "purple"): .05, _G0: .1}),
    "lymphocyte": dict(
        cell_size={"small": .9, "big": .1}, cell_shape={"round": .9, "irregular": .1},
        nucleus_shape={"unsegmented-round": .85, "unsegmented-indented": .15},
        nuclear_cytoplasmic_ratio={"high": .9, "low": .1},
        chromatin_density={"densely": .9, "loosely": .1},
        cytoplasm_vacuole={"no": .95, "yes": .05}, cytoplasm_texture={"clear": .9, "frosted": .1},
        cytoplasm_colour={"blue": .55, "light blue": .45},
        granules={_G0: .92, ("yes", "small", "pink"): .08}),
    "monocyte": dict(
        cell_size={"big": .95, "small": .05}, cell_shape={"irregular": .45, "round": .55},
        nucleus_shape={"unsegmented-indented": .55, "irregular": .3, "unsegmented-band": .1,
                       "unsegmented-round": .05},
        nuclear_cytoplasmic_ratio={"low": .75, "high": .25},
        chromatin_density={"loosely": .8, "densely": .2},
        cytoplasm_vacuole={"yes": .45, "no": .55}, cytoplasm_texture={"frosted": .8, "clear": .2},
        cytoplasm_colour={"purple blue": .7, "blue": .2, "light blue": .1},
        granules={_G0: .75, ("yes", "small", "pink"): .15, ("yes", "small", "purple"): .1}),
    "eosinophil": dict(
        cell_size={"big": .8, "small": .2}, cell_shape={"round": .9, "irregular": .1},
        nucleus_shape={"segmented-bilobed": .8, "segmented-multilobed": .15,
                       "unsegmented-band": .05},
        nuclear_cytoplasmic_ratio={"low": .95, "high": .05},
        chromatin_density={"densely": .9, "loosely": .1},
        cytoplasm_vacuole={"no": .95, "yes": .05}, cytoplasm_texture={"clear": .9, "frosted": .1},
        cytoplasm_colour={"light blue": .8, "blue": .2},
        granules={("yes", "round", "red"): .8, ("yes", "coarse", "red"): .15,
                  ("yes", "round", "pink"): .05}),
    "basophil": dict(
        cell_size={"small": .6, "big": .4}, cell_shape={"round": .8, "irregular": .2},
        nucleus_shape={"irregular": .5, "segmented-bilobed": .25, "unsegmented-indented": .25},
        nuclear_cytoplasmic_ratio={"low": .7, "high": .3},
        chromatin_density={"densely": .8, "loosely": .2},
        cytoplasm_vacuole={"no": .9, "yes": .1}, cytoplasm_texture={"clear": .8, "frosted": .2},
        cytoplasm_colour={"light blue": .6, "purple blue": .4},
        granules={("yes", "coarse", "purple"): .95, ("yes", "round", "purple"): .05}),
    "myeloblast": dict(
        cell_size={"big": .85, "small": .15}, cell_shape={"round": .85, "irregular": .15},
        nucleus_shape={"unsegmented-round": .8, "unsegmented-indented": .15, "irregular": .05},
        nuclear_cytoplasmic_ratio={"high": .9, "low": .1},
        chromatin_density={"loosely": .9, "densely": .1},
        cytoplasm_vacuole={"no": .9, "yes": .1}, cytoplasm_texture={"clear": .8, "frosted": .2},
        cytoplasm_colour={"blue": .85, "purple blue": .1, "light blue": .05},
        granules={_G0: .85, ("yes", "small", "purple"): .15}),
    "promyelocyte": dict(
        cell_size={"big": .95, "small": .05}, cell_shape={"round": .85, "irregular": .15},
        nucleus_shape={"unsegmented-round": .55, "unsegmented-indented": .4, "irregular": .05},
        nuclear_cytoplasmic_ratio={"low": .6, "high": .4},
        chromatin_density={"loosely": .75, "densely": .25},
        cytoplasm_vacuole={"no": .85, "yes": .15}, cytoplasm_texture={"clear": .75, "frosted": .25},
        cytoplasm_colour={"blue": .6, "purple blue": .3, "light blue": .1},
        granules={("yes", "coarse", "purple"): .75, ("yes", "round", "purple"): .15,
                  ("yes", "small", "purple"): .05, ("yes", "coarse", "red"): .05}),
    "atypical lymphocyte": dict(
        cell_size={"big": .85, "small": .15}, cell_shape={"irregular": .75, "round": .25},
        nucleus_shape={"irregular": .4, "unsegmented-indented": .35, "unsegmented-round": .25},
        nuclear_cytoplasmic_ratio={"low": .7, "high": .3},
        chromatin_density={"loosely": .55, "densely": .45},
        cytoplasm_vacuole={"no": .8, "yes": .2}, cytoplasm_texture={"clear": .75, "frosted": .25},
        cytoplasm_colour={"blue": .8, "light blue": .1, "purple blue": .1},
        granules={_G0: .85, ("yes", "small", "pink"): .15}),
}
#: Types whose granules overlie the nucleus too (basophil granules obscure it).
GRANULES_OVER_NUCLEUS = ("basophil",)


def _pick(rng: np.random.Generator, dist: Dict) -> object:
    keys = list(dist)
    p = np.array([dist[k] for k in keys], dtype=np.float64)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def sample_white_attributes(rng: np.random.Generator, cell_type: str) -> Dict[str, str]:
    """Attributes of one white cell of ``cell_type``, drawn from its profile (all 11 keys)."""
    prof = WHITE_PROFILES[cell_type]
    out = {k: str(_pick(rng, v)) for k, v in prof.items() if k != "granules"}
    out["granularity"], out["granule_type"], out["granule_colour"] = _pick(rng, prof["granules"])
    return out
