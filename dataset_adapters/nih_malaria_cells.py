"""NLM malaria cell images (Rajaraman et al. 2018): 27,558 red cell crops, parasitized or not."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, Optional

from dataset_adapters._classification import CropClassifier, classes_of, write_crops
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data.catalog import register_adapter
from unihema.data.sample import UnifiedSample

#: class folder -> canonical term
LABEL_MAP: Dict[str, str] = {
    "Parasitized": "infected red blood cell",
    "Uninfected": "red blood cell",
}
FOLDER = "cell_images"
_SLIDE = re.compile(r"^(C\d+(?:P\d+)?)_?thin", re.IGNORECASE)


def slide_of(path: Path) -> Optional[str]:
    """The slide/patient token of a file name: ``C100P61ThinF_IMG_..._cell_162.png`` ->
    ``"C100P61"``, ``C1_thinF_IMG_...png`` -> ``"C1"``; ``None`` for other names."""
    m = _SLIDE.match(path.name)
    return m.group(1).upper() if m else None


@register_adapter("nih_malaria_cells")
class NihMalariaCells(CropClassifier):
    """NLM malaria cell images: PNG crops of single red cells (about 100-200 px), two folders.

    <root>/
      cell_images/                 (root may also be this folder; the Kaggle copy nests a
        Parasitized/*.png           second cell_images/ inside, which is found too)
        Uninfected/*.png           non-image files (Thumbs.db) are ignored

    File names start with the slide token (``C<slide>P<patient>thinF_...`` or
    ``C<slide>_thinF_...``), used as ``patient_id`` so that crops of one slide never straddle
    splits. The source has no official split: splits are ``unihema.data.splits.seeded_split``
    (70/10/20, seed 0) grouped by that token. The layout is taken from the NLM datasheet and the
    catalogue, not from the files; the slide-token rule is inferred from published file names.
    """

    splits = ("train", "val", "test")
    label_map = LABEL_MAP
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "public domain (U.S. National Library of Medicine)"
    citation = ("Rajaraman S, Antani SK, Poostchi M, Silamut K, Hossain MA, Maude RJ, Jaeger S, "
                "Thoma GR. Pre-trained convolutional neural networks as feature extractors "
                "toward improved malaria parasite detection in thin blood smear images. PeerJ "
                "6:e4568, 2018. doi:10.7717/peerj.4568")
    url = ("https://lhncbc.nlm.nih.gov/LHC-research/LHC-projects/image-processing/"
           "malaria-datasheet.html")
    size = "27,558 images"
    downloads = ({"url": "https://data.lhncbc.nlm.nih.gov/public/Malaria/cell_images.zip",
                  "sha256": None, "filename": "cell_images.zip"},)

    def class_root(self) -> Path:
        base = self.root
        while (base / FOLDER).is_dir():  # root, root/cell_images, root/cell_images/cell_images
            base = base / FOLDER
        return base

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        yield from self.load_folders(split, self.class_root(), patient=slide_of)

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        files = [f"Parasitized/C{s}P{s + 50}ThinF_IMG_20150918_1441{s:02d}_cell_{i}.png"
                 for s in (100, 101, 102) for i in (1, 2)]
        files += [f"Uninfected/C{s}_thinF_IMG_20150604_1047{s:02d}_cell_{i}.png"
                  for s in (1, 2, 3) for i in (5,)]
        write_crops(root / FOLDER, files, size=(64, 64))
        (root / FOLDER / "Parasitized" / "Thumbs.db").write_bytes(b"\0" * 16)
        ids = [f[: -len(".png")] for f in files]
        return count_splits(assign_splits(ids, [slide_of(Path(f)) for f in files],
                                       seed=cls.split_seed), cls.splits)
