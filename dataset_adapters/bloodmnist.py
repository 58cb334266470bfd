"""BloodMNIST (MedMNIST v2): PBC-derived blood cell images in eight classes, one NPZ archive."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, Optional, Union

import numpy as np

from dataset_adapters._classification import CropClassifier, classes_of
from dataset_adapters._examples import cell_crop
from unihema.data.catalog import DataError, register_adapter
from unihema.data.formats import npz_image_path, read_medmnist_npz
from unihema.data.sample import UnifiedSample

#: label index (as MedMNIST's INFO lists it) -> canonical term
LABEL_MAP: Dict[str, str] = {
    "0": "basophil",
    "1": "eosinophil",
    "2": "erythroblast",
    "3": "immature granulocyte",  # "immature granulocytes(myelocytes, metamyelocytes and
    "4": "lymphocyte",            #  promyelocytes)"
    "5": "monocyte",
    "6": "neutrophil",
    "7": "platelet",
}
FILE = "bloodmnist.npz"


@register_adapter("bloodmnist")
class BloodMnist(CropClassifier):
    """BloodMNIST: one NumPy archive with the official train / val / test split.

    <root>/
      bloodmnist.npz            arrays train_images uint8 [N, 28, 28, 3], train_labels [N, 1],
                                val_images, val_labels, test_images, test_labels
      (or bloodmnist_64.npz, bloodmnist_128.npz, bloodmnist_224.npz: MedMNIST+ sizes)

    The file is ``bloodmnist.npz`` when present, else the single ``bloodmnist_<size>.npz`` in
    the root; with several sizes and no plain file, pass ``npz="bloodmnist_128.npz"``. Labels are
    indices 0-7 (``LABEL_MAP``: basophil, eosinophil, erythroblast, immature granulocyte,
    lymphocyte, monocyte, neutrophil, platelet). Images are not files: ``image_path`` is
    ``<root>/bloodmnist.npz::<split>_images/<index>``, which ``unihema.data.io.read_image``
    decodes; ``sample_id`` is ``<split>_<index>``. The official split is kept. The archive
    layout is taken from the MedMNIST documentation (the arrays of ``np.load``), not seen.
    """

    splits = ("train", "val", "test")
    label_map = LABEL_MAP
    classes = {"classify": classes_of(LABEL_MAP)}
    license = "CC BY 4.0"
    citation = ("Yang J, Shi R, Wei D, Liu Z, Zhao L, Ke B, Pfister H, Ni B. MedMNIST v2 - A "
                "large-scale lightweight benchmark for 2D and 3D biomedical image "
                "classification. Scientific Data 10:41, 2023. doi:10.1038/s41597-022-01721-8. "
                "Images from Acevedo et al., Data in Brief 30:105474, 2020")
    url = "https://medmnist.com/"
    size = "17,092 images"
    downloads = ({"url": "https://zenodo.org/records/10519652/files/bloodmnist.npz?download=1",
                  "sha256": None, "filename": FILE},)

    def __init__(self, root: Union[str, Path], *, on_error: str = "raise",
                 npz: Optional[str] = None) -> None:
        super().__init__(root, on_error=on_error)
        self.npz_name = npz

    def archive(self) -> Path:
        """The NPZ file read (see the class docstring for how it is chosen)."""
        if self.npz_name is not None:
            return self.root / self.npz_name
        if (self.root / FILE).is_file():
            return self.root / FILE
        found = sorted(self.root.glob("bloodmnist_*.npz"))
        if len(found) == 1:
            return found[0]
        what = ", ".join(p.name for p in found) if found else "none"
        raise DataError(f"{self.name}: expected {self.root / FILE} (or a single "
                        f"bloodmnist_<size>.npz); found: {what}. Pass npz=... to choose")

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        path = self.archive()
        try:
            images, labels = read_medmnist_npz(path, split)
        except DataError as exc:
            self.report(path, str(exc))
            return
        height, width = images.shape[1:3]
        for i, y in enumerate(labels.tolist()):
            label = self.label_of(str(y))
            if label is None:
                self.unknown_label(path, str(y), "label index",
                                   extra=f" at {split}_labels[{i}]")
                continue
            yield UnifiedSample(
                dataset=self.name, split=split, sample_id=f"{split}_{i}",
                image_path=npz_image_path(path, f"{split}_images", i), width=int(width),
                height=int(height), label=label, label_set=list(self.classes["classify"]),
                meta={"kind": "crop", "raw_label": str(y), "license": self.license},
            )

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        counts = {"train": 8, "val": 3, "test": 4}
        arrays = {}
        for split, n in counts.items():
            labels = np.arange(n, dtype=np.uint8).reshape(n, 1) % len(LABEL_MAP)
            arrays[f"{split}_images"] = np.stack(
                [cell_crop(28, label=LABEL_MAP[str(int(y))], seed=i)
                 for i, y in enumerate(labels[:, 0])])
            arrays[f"{split}_labels"] = labels
        root.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(root / FILE, **arrays)
        return counts
