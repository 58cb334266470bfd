"""MP-IDB: thin-smear fields of four Plasmodium species with parasite masks."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Dict, Iterable, List, Optional

import numpy as np

from dataset_adapters._detseg import (component_boxes, derived_mask, find_beside, image_size,
                                      list_images)
from dataset_adapters._splits import assign_splits, count_splits
from unihema.data import io
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.sample import UnifiedSample

#: species folder -> canonical term
LABEL_MAP: Dict[str, str] = {
    "Falciparum": "plasmodium falciparum",
    "Malariae": "plasmodium malariae",
    "Ovale": "plasmodium ovale",
    "Vivax": "plasmodium vivax",
}
#: stage letter of the file name -> canonical term
STAGES: Dict[str, str] = {"R": "ring form", "T": "trophozoite", "S": "schizont",
                          "G": "gametocyte"}
#: values of the derived mask written for each ground truth (the JPEG thresholded at 128)
MASK_VALUES: Dict[int, str] = {0: "background", 1: "malaria parasite"}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def stages_of(stem: str) -> List[str]:
    """Stages named at the end of a file name (``1305121398-0012-R_T`` -> ring form,
    trophozoite); empty when the last ``-`` field is not stage letters."""
    letters = stem.rsplit("-", 1)[-1].split("_")
    if not all(s.upper() in STAGES for s in letters):
        return []
    return [STAGES[s.upper()] for s in letters]


@register_adapter("mp_idb")
class MpIdb(DatasetAdapter):
    """MP-IDB, the Malaria Parasite Image Database (github andrealoddo/MP-IDB), as cloned.

    <root>/
      Falciparum/img/<name>.jpg     2592x1944 thin-smear field
      Falciparum/gt/<name>.jpg      parasite mask of the same name and size (JPEG, so values
                                    near 0 and 255 rather than exactly)
      Malariae/{img,gt}/...         the same for P. malariae, Ovale/ and Vivax/

    File names end with the stages present: ``<id>-<n>-R_T.jpg`` (R ring, T trophozoite,
    S schizont, G gametocyte), kept in ``meta["stages"]`` (empty when a name does not end so).
    The ground truth is thresholded at 128 into a derived 0/1 PNG (``MASK_VALUES``: 0
    background, 1 malaria parasite) written once under ``<root>/.unihema_cache`` (or
    ``$UNIHEMA_CACHE``); each 8-connected parasite region of at least
    ``min_component_pixels`` pixels becomes a box labelled with the species (detect), and the
    image's label is its species (classify, from the folder). There is no official split:
    splits are ``seeded_split`` (70/10/20, seed 0) over ``<species>/<name>``. The layout is
    taken from the repository's README (documentation), not from the files.
    """

    tasks = ("detect", "segment", "classify")
    splits = ("train", "val", "test")
    classes = {"detect": tuple(LABEL_MAP.values()), "classify": tuple(LABEL_MAP.values()),
               "segment": tuple(MASK_VALUES.values())}
    license = "CC BY 4.0"
    citation = ("Loddo A, Di Ruberto C, Kocher M, Prod'Hom G. MP-IDB: The Malaria Parasite "
                "Image Database for Image Processing and Analysis. Processing and Analysis of "
                "Biomedical Information (SaMBa 2018), LNCS 11379, 2019")
    url = "https://github.com/andrealoddo/MP-IDB"
    size = "210 images"
    access = ("git clone the repository (the root is the clone, holding the four species "
              "folders)")
    #: connected regions smaller than this (JPEG speckle) are not boxes
    min_component_pixels: ClassVar[int] = 16

    def _items(self) -> List[tuple]:
        out = []
        for folder, species in LABEL_MAP.items():
            for image in list_images(self.root / folder / "img", IMAGE_EXTENSIONS):
                out.append((image, folder, species))
        if not out:
            raise DataError(f"{self.name}: no images in <species>/img/ under {self.root}. "
                            f"Expected layout:\n{self.layout()}")
        return out

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        items = self._items()
        keys = [f"{folder}/{image.stem}" for image, folder, _ in items]
        assignment = assign_splits(keys)
        for (image, folder, species), key in zip(items, keys):
            if assignment[key] == split:
                sample = self._sample(split, image, folder, species, key)
                if sample is not None:
                    yield sample

    def _sample(self, split: str, image: Path, folder: str, species: str,
                key: str) -> Optional[UnifiedSample]:
        gt = find_beside(self.root / folder / "gt", image.stem, IMAGE_EXTENSIONS)
        if gt is None:
            self.report(image, f"no ground-truth mask {image.stem}.* in "
                               f"{self.root / folder / 'gt'}")
            return None
        size = image_size(self, image)
        if size is None:
            return None
        width, height = size

        def binarise() -> np.ndarray:
            arr = io.read_image(gt)
            if arr.shape[:2] != (height, width):
                raise DataError(f"{gt}: mask is {arr.shape[1]}x{arr.shape[0]}, image is "
                                f"{width}x{height}")
            return (arr.max(axis=2) >= 128).astype(np.uint8)

        try:
            mask_path = derived_mask(self, key, [gt], binarise)
            binary = io.read_mask(mask_path, MASK_VALUES, list(MASK_VALUES.values())) == 1
        except DataError as exc:
            self.report(gt, str(exc).replace(f"{gt}: ", ""))
            return None
        boxes = component_boxes(binary, self.min_component_pixels)
        return UnifiedSample(
            dataset=self.name, split=split, sample_id=key, image_path=str(image),
            width=width, height=height, boxes=boxes, box_labels=[species] * len(boxes),
            mask_path=str(mask_path), mask_values=dict(MASK_VALUES), label=species,
            label_set=list(self.classes["classify"]),
            meta={"kind": "field", "stages": stages_of(image.stem), "source_mask": str(gt),
                  "license": self.license},
        )

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        keys = []
        for s, folder in enumerate(LABEL_MAP):
            for i in range(3):  # three a species: every seeded split gets an image
                code = "RTSG"[(s + i) % 4] + ("_T" if i else "")
                name = f"13051213{s}{i}-00{i + 1:02d}-{code}"
                boxes = ex.layout_boxes(160, 120, 1 + i, size=24, seed=s * 2 + i)
                ex.write_smear(root / folder / "img" / f"{name}.jpg", 160, 120, boxes,
                               ["parasite"] * len(boxes), seed=s * 2 + i)
                mask = ex.ellipse_mask(120, 160, boxes, [255] * len(boxes))
                ex.save_image(np.repeat(mask[:, :, None], 3, axis=2),
                              root / folder / "gt" / f"{name}.jpg")
                keys.append(f"{folder}/{name}")
        return count_splits(assign_splits(keys), cls.splits)
