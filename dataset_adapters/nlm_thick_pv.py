"""NLM thick smears of P. vivax patients (same format as :mod:`dataset_adapters.nlm_thick_pf`)."""

from __future__ import annotations

from typing import ClassVar, Dict

from dataset_adapters.nlm_thick_pf import NlmThickPf
from unihema.data.catalog import register_adapter

#: annotation type -> canonical term (parasites of this set are P. vivax)
LABEL_MAP: Dict[str, str] = {
    "Parasite": "plasmodium vivax",
    "White_Blood_Cell": "white blood cell",
    "WBC": "white blood cell",
}


@register_adapter("nlm_thick_pv")
class NlmThickPv(NlmThickPf):
    """NLM malaria thick smears, P. vivax (Lister Hill Center malaria datasheet).

    <root>/
      <patient>/img/<image>.jpg       smartphone photo of a thick smear field
      <patient>/GT/<image>.txt        the image's annotations:
                                      "<objects>,<width>,<height>" (header, optional), then
                                      "<id>,<type>,<comment>,<shape>,<n>,x1,y1[,x2,y2...]" with
                                      type Parasite | White_Blood_Cell, shape Point | Circle
                                      (centre, point on the circle) | Rectangle | Polygon

    Identical in format and rules to ``nlm_thick_pf`` (see there): parasites are labelled
    ``plasmodium vivax``, Points get squares of ``point_box_size`` (parasite, 40 pixels) or
    ``point_box_sizes`` (white cell, 110), centres are kept in ``meta["points"]``, splits are
    ``seeded_split`` (70/10/20, seed 0) grouped by patient. The layout and format are taken
    from the NLM datasheet (documentation), not from the files.
    """

    label_map: ClassVar[Dict[str, str]] = LABEL_MAP
    classes = {"detect": ("plasmodium vivax", "white blood cell")}
    citation = ("Kassim YM, et al. Diagnosing Malaria Patients with Plasmodium falciparum and "
                "vivax Using Deep Learning for Thick Smear Images. Diagnostics, 2021")
    size = "P. vivax thick-smear patients"
