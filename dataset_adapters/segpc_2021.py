"""SegPC-2021: multiple-myeloma plasma cells with per-instance nucleus and cytoplasm masks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from dataset_adapters._detseg import derived_mask, image_size, list_images, report_error
from dataset_adapters._splits import assign_splits
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats import merge_instance_masks
from unihema.data.sample import UnifiedSample

#: raw value of an instance mask -> value of the derived semantic mask (nucleus wins overlaps)
INSTANCE_VALUES: Dict[int, int] = {20: 1, 40: 2}
#: derived semantic mask value -> canonical class
MASK_VALUES: Dict[int, str] = {0: "background", 1: "cytoplasm", 2: "nucleus"}
#: split -> folder of the release (the test folder has no masks and is not read)
SPLIT_FOLDERS = {"train": "train", "val": "validation"}
IMAGE_EXTENSIONS = (".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff")
_INSTANCE = re.compile(r"^(?P<image>.+)_(?P<k>\d+)$")


@register_adapter("segpc_2021")
class SegPC2021(DatasetAdapter):
    """SegPC-2021 challenge data (TCIA "SegPC-2021"), as unpacked.

    <root>/
      train/x/<image>.bmp           microscope field of a myeloma bone-marrow aspirate
      train/y/<image>_<k>.bmp       mask of plasma cell k of that image, same size:
                                    0 background, 20 cytoplasm, 40 nucleus
      validation/x/, validation/y/  the same (read as split val)

    (or ``x/`` and ``y/`` directly in the root, split by ``seeded_split`` 70/10/20, seed 0,
    over the image name). The instance masks of an image are merged into one derived
    semantic mask (``merge_instance_masks``: 0 background, 1 cytoplasm, 2 nucleus; the
    nucleus wins where instances overlap), written once as a PNG under ``<root>/.unihema_cache``
    (or ``$UNIHEMA_CACHE``) and rebuilt when a source mask changes. An image without
    instance masks, a mask of another size or a value other than 0/20/40 is a problem naming
    the file. The challenge's test images carry no masks and are not read. The instance
    value coding (20/40) is taken from the challenge documentation, not from the files.
    """

    tasks = ("segment",)
    splits = ("train", "val")
    classes = {"segment": tuple(MASK_VALUES.values())}
    license = "CC BY-NC-SA 4.0"
    citation = ("Gupta A, et al. SegPC-2021: A challenge & dataset on segmentation of Multiple "
                "Myeloma plasma cells from microscopic images. Medical Image Analysis 83:102677, "
                "2023")
    url = "https://segpc-2021.grand-challenge.org/"
    size = "about 775 images"
    access = ("download SegPC-2021 from The Cancer Imaging Archive (linked from "
              "https://segpc-2021.grand-challenge.org/, a data-use agreement applies); unpack "
              "so that train/ and validation/ lie in the root")

    def _instances(self, y: Path) -> Dict[str, List[Path]]:
        out: Dict[str, List[Path]] = {}
        for p in list_images(y, IMAGE_EXTENSIONS):
            m = _INSTANCE.match(p.stem)
            if m is None:
                self.report(p, "instance mask name is not <image>_<k>")
                continue
            out.setdefault(m.group("image"), []).append(p)
        return out

    def _folders(self, split: str) -> List[Tuple[Path, Optional[Dict[str, str]]]]:
        if (self.root / "x").is_dir():
            images = list_images(self.root / "x", IMAGE_EXTENSIONS)
            return [(self.root, assign_splits([p.stem for p in images]))]
        folder = self.root / SPLIT_FOLDERS[split]
        if not (folder / "x").is_dir():
            raise DataError(f"{self.name}: {folder / 'x'} is missing. Expected layout:\n"
                            f"{self.layout()}")
        return [(folder, None)]

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        for folder, assignment in self._folders(split):
            instances = self._instances(folder / "y")
            for image in list_images(folder / "x", IMAGE_EXTENSIONS):
                if assignment is not None and assignment[image.stem] != split:
                    continue
                sample = self._sample(split, folder, image, sorted(instances.get(image.stem, [])))
                if sample is not None:
                    yield sample

    def _sample(self, split: str, folder: Path, image: Path,
                masks: List[Path]) -> Optional[UnifiedSample]:
        if not masks:
            self.report(image, f"no instance mask {image.stem}_<k>.bmp in {folder / 'y'}")
            return None
        size = image_size(self, image)
        if size is None:
            return None
        width, height = size
        rel = folder.relative_to(self.root).as_posix()
        key = image.stem if rel == "." else f"{rel}/{image.stem}"
        try:
            mask = derived_mask(self, key, masks, lambda: merge_instance_masks(
                [(p, None) for p in masks], height, width, INSTANCE_VALUES))
        except DataError as exc:
            bad = next((p for p in masks if str(exc).startswith(str(p))), masks[0])
            report_error(self, bad, exc)
            return None
        return UnifiedSample(
            dataset=self.name, split=split, sample_id=image.stem, image_path=str(image),
            width=width, height=height, mask_path=str(mask), mask_values=dict(MASK_VALUES),
            meta={"kind": "field", "instances": len(masks),
                  "instance_masks": [str(p) for p in masks], "license": self.license},
        )

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        from dataset_adapters import _examples as ex

        counts = {"train": 3, "val": 1}
        k = 0
        for split, n in counts.items():
            folder = root / SPLIT_FOLDERS[split]
            for _ in range(n):
                name = str(100 + k)
                boxes = ex.layout_boxes(160, 120, 2, size=44, seed=k)
                ex.write_smear(folder / "x" / f"{name}.bmp", 160, 120, boxes,
                               ["plasma cell"] * 2, seed=k)
                for j, box in enumerate(boxes, start=1):
                    ex.save_image(ex.ellipse_mask(120, 160, [box], [20], nucleus_value=40),
                                  folder / "y" / f"{name}_{j}.bmp")
                k += 1
        return counts
