"""BBBC041: P. vivax thin blood smears with boxes of every cell (Broad Bioimage Benchmark)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Optional

import numpy as np

from dataset_adapters._detseg import clip_box, image_size, map_label, report_error
from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.formats import BBBCImage, read_bbbc_json
from unihema.data.sample import UnifiedSample

#: BBBC category -> canonical term ("difficult": a cell the annotators could not type)
LABEL_MAP: Dict[str, str] = {
    "red blood cell": "red blood cell",
    "leukocyte": "white blood cell",
    "gametocyte": "gametocyte",
    "ring": "ring form",
    "trophozoite": "trophozoite",
    "schizont": "schizont",
    "difficult": "unidentified cell",
}

#: split -> annotation file
SPLIT_FILES = {"train": "training.json", "test": "test.json"}


def bbbc_samples(adapter: DatasetAdapter, split: str, path: Path, label_map: Dict[str, str],
                 entries: Optional[List[BBBCImage]] = None) -> Iterable[UnifiedSample]:
    """Records of the images of one BBBC JSON file (``entries``: an already read subset).

    ``pathname`` is resolved against the root (its leading ``/`` dropped); the recorded
    ``shape`` must match the image file; boxes are clipped when they overshoot by up to 2
    pixels; categories go through ``label_map``.
    """
    if entries is None:
        try:
            entries = read_bbbc_json(path)
        except DataError as exc:
            report_error(adapter, path, exc)
            return
    for i, entry in enumerate(entries):
        where = f"{path} ([{i}] {entry.pathname})"
        image = adapter.root / entry.pathname.lstrip("/")
        if not image.is_file():
            adapter.report(where, f"image file {image} is missing")
            continue
        size = image_size(adapter, image)
        if size is None:
            continue
        if size != (entry.width, entry.height):
            adapter.report(where, f"shape says {entry.width}x{entry.height} (c x r) but the file "
                                  f"is {size[0]}x{size[1]}")
            continue
        boxes, labels = [], []
        for k, obj in enumerate(entry.objects):
            label = map_label(adapter, obj.category, label_map, f"{where} objects[{k}]")
            box = clip_box(adapter, obj.box, entry.width, entry.height, f"{where} objects[{k}]")
            if label is None or box is None:
                break
            boxes.append(box)
            labels.append(label)
        else:
            yield UnifiedSample(
                dataset=adapter.name, split=split,
                sample_id=Path(entry.pathname.lstrip("/")).with_suffix("").as_posix(),
                image_path=str(image), width=entry.width, height=entry.height,
                boxes=np.asarray(boxes, np.float32).reshape(-1, 4), box_labels=labels,
                meta={"kind": "field", "license": adapter.license},
            )


def write_bbbc_example(root: Path, files: Dict[str, int], categories: List[str],
                       ext: str = ".png") -> None:
    """Write ``files`` (annotation file name -> number of images) in the BBBC layout."""
    from dataset_adapters import _examples as ex

    k = 0
    for fname, n in files.items():
        doc = []
        for _ in range(n):
            boxes = ex.layout_boxes(160, 120, 4, size=26, seed=k)
            cats = [categories[(k + j) % len(categories)] for j in range(4)]
            name = f"{k:08x}-{k * 7919 % 10000:04d}{ext}"
            ex.write_smear(root / "images" / name, 160, 120, boxes, cats, seed=k)
            doc.append({
                "image": {"checksum": f"{k:032x}", "pathname": f"/images/{name}",
                          "shape": {"r": 120, "c": 160, "channels": 3}},
                "objects": [{"bounding_box": {"minimum": {"r": int(b[1]), "c": int(b[0])},
                                              "maximum": {"r": int(b[3]), "c": int(b[2])}},
                             "category": c} for b, c in zip(boxes, cats)],
            })
            k += 1
        ex.write_json(root / fname, doc)


@register_adapter("bbbc041")
class BBBC041(DatasetAdapter):
    """BBBC041v1 (P. vivax malaria infected human blood smears), as downloaded and unzipped.

    <root>/                        (the unzipped ``malaria/`` folder)
      images/<name>.png | .jpg     1600x1200 (training) or 1944x1383 (test) field images
      training.json                BBBC JSON: a list of {"image": {"pathname":
      test.json                    "/images/<name>.png", "shape": {"r", "c", "channels"}},
                                   "objects": [{"bounding_box": {"minimum": {"r", "c"},
                                   "maximum": {"r", "c"}}, "category": ...}]}

    Categories (LABEL_MAP): red blood cell, leukocyte -> white blood cell, gametocyte,
    ring -> ring form, trophozoite, schizont, difficult -> unidentified cell. ``r`` is the
    row, ``c`` the column; boxes are taken as pixel edges. Splits are the official files:
    training.json (train) and test.json (test). The layout and format are as the BBBC041 page
    documents them (not checked against the files here).
    """

    tasks = ("detect",)
    splits = ("train", "test")
    classes = {"detect": tuple(LABEL_MAP.values())}
    license = "CC BY-NC-SA 3.0"
    citation = ("Ljosa V, Sokolnicki KL, Carpenter AE. Annotated high-throughput microscopy "
                "image sets for validation. Nature Methods 9(7):637, 2012. "
                "doi:10.1038/nmeth.2083. Hung J, Carpenter AE. Applying Faster R-CNN for Object "
                "Detection on Malaria Images. CVPR Workshops, 2017")
    url = "https://bbbc.broadinstitute.org/BBBC041"
    size = "1,364 images, about 80,000 cells"
    downloads = ({"url": "https://data.broadinstitute.org/bbbc/BBBC041/malaria.zip",
                  "sha256": None, "filename": "malaria.zip"},)

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        path = self.root / SPLIT_FILES[split]
        if not path.is_file():
            raise DataError(f"{self.name}: {path} is missing. Expected layout:\n"
                            f"{self.layout()}")
        yield from bbbc_samples(self, split, path, LABEL_MAP)

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        write_bbbc_example(root, {"training.json": 3, "test.json": 2}, list(LABEL_MAP))
        return {"train": 3, "test": 2}
