"""Registers the YAML-described generic adapter of :mod:`unihema.data.generic` as ``generic``.

The adapter itself lives in the core (users' own data needs no package of adapters); this
module only imports it with the other bundled adapters and adds its example.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict

from dataset_adapters import _examples as ex
from unihema.data.generic import DEFAULT_SPEC, GenericAdapter


def write_example(cls, root: Path) -> Dict[str, int]:
    """A VOC-format example with its spec (``unihema_dataset.yaml``) and split files."""
    root = Path(root)
    w, h = 96, 72
    ids = {"train": ["smear_01", "smear_02"], "val": ["smear_03"], "test": ["smear_04"]}
    kinds = ["RBC", "WBC", "RBC"]
    for n, sid in enumerate(sum(ids.values(), []), start=1):
        boxes = ex.layout_boxes(w, h, 3, size=20, seed=n)
        ex.write_smear(root / "images" / f"{sid}.png", w, h, boxes, kinds, seed=n)
        ex.write_voc(root / "annotations" / f"{sid}.xml", f"{sid}.png", w, h,
                     [(k, (int(b[0]) + 1, int(b[1]) + 1, int(b[2]), int(b[3])))
                      for k, b in zip(kinds, boxes)])
    for split, names in ids.items():
        (root / "splits").mkdir(exist_ok=True)
        (root / "splits" / f"{split}.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    (root / DEFAULT_SPEC).write_text(
        "format: voc\nimages: images/*.png\nannotations: annotations/{stem}.xml\n"
        "mapping: {RBC: red blood cell, WBC: white blood cell}\n"
        "splits:\n  files: {train: splits/train.txt, val: splits/val.txt, "
        "test: splits/test.txt}\n", encoding="utf-8")
    return {split: len(names) for split, names in ids.items()}


GenericAdapter.write_example = classmethod(write_example)
