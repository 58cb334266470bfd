"""The procedural blood smears of :mod:`unihema.synth`, read back from disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator

from unihema.data.catalog import DataError, DatasetAdapter, register_adapter
from unihema.data.sample import SampleError, UnifiedSample
from unihema.synth.cells import RED_MORPHOLOGIES, WHITE_TYPES
from unihema.synth.field import DETECT_CLASSES, SEGMENT_CLASSES
from unihema.synth.writer import GENERATOR, MANIFEST

_HINT = "not a generated dataset, run `unihema data generate --out DIR`"


@register_adapter("synthetic_smear")
class SyntheticSmear(DatasetAdapter):
    """Synthetic blood smears written by ``unihema data generate --out DIR`` (all six tasks).

    <root>/
      manifest.json                 {"generator": "unihema.synth", "version": 1, "config": {...},
                                     "splits": {"train": N, ...}, "crops": {"train": M, ...},
                                     "mask_values": {"0": "background", ...}, "classes": {...}}
                                    written last: a folder without it is an incomplete generation
      <split>/images/<id>.png       RGB field of view, id like "train_000001"
      <split>/masks/<id>.png        uint8 semantic mask: 0 background, 1 red blood cell,
                                    2 nucleus, 3 cytoplasm (white cells), 4 platelet,
                                    5 malaria parasite
      <split>/crops/<id>_c<k>.png   single-cell crop of box k of field <id>
      <split>/fields.jsonl          one UnifiedSample.to_dict() a line: boxes, box_labels,
                                    box_attributes, mask, qa, report (paths relative to root)
      <split>/crops.jsonl           one a line: label, label_set, attributes (white cells),
                                    qa, report (paths relative to root)

    Splits are train, val and test; each is generated from its own seed.
    """

    tasks = ("detect", "classify", "segment", "morphology", "mlm", "vqa")
    splits = ("train", "val", "test")
    classes = {
        "detect": tuple(DETECT_CLASSES),
        "segment": tuple(SEGMENT_CLASSES),
        "classify": tuple(WHITE_TYPES) + tuple(RED_MORPHOLOGIES),
    }
    license = "CC0-1.0"
    citation = ("unihema contributors. unihema.synth: a procedural blood-smear generator "
                "with exact multi-task supervision (docs/synthetic.md).")
    url = "docs/synthetic.md"

    @classmethod
    def write_example(cls, root: Path) -> Dict[str, int]:
        """A tiny generated set (96 px fields: train 2, val 1, test 1, with their crops)."""
        from unihema.config.schema import SynthConfig
        from unihema.synth import generate_dataset

        cfg = SynthConfig(size=96, train=2, val=1, test=1, seed=0, workers=1)
        manifest = generate_dataset(root, cfg, progress=False)
        return {split: int(n) + int(manifest.get("crops", {}).get(split, 0))
                for split, n in manifest["splits"].items()}

    def manifest(self) -> Dict[str, Any]:
        """The parsed ``manifest.json``; :class:`DataError` naming the file when absent or bad."""
        path = self.root / MANIFEST
        if not path.is_file():
            raise DataError(f"{self.name}: {path} is missing: {_HINT}")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{self.name}: {path} is not valid JSON ({exc}): {_HINT}") from None
        if not isinstance(manifest, dict) or manifest.get("generator") != GENERATOR:
            raise DataError(f"{self.name}: {path} was not written by {GENERATOR}: {_HINT}")
        return manifest

    def _load(self, split: str) -> Iterable[UnifiedSample]:
        manifest = self.manifest()
        generated = manifest.get("splits", {})
        if split not in generated:
            raise DataError(
                f"{self.name}: split '{split}' was not generated in {self.root / MANIFEST}; "
                f"generated splits: {', '.join(generated) or '(none)'}"
            )
        for name in ("fields.jsonl", "crops.jsonl"):
            yield from self._read_jsonl(self.root / split / name)

    def _read_jsonl(self, path: Path) -> Iterator[UnifiedSample]:
        if not path.is_file():
            self.report(path, f"index file is missing (expected beside {MANIFEST}): {_HINT}")
            return
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                    if not isinstance(d, dict):
                        raise ValueError(f"expected a JSON object, got {type(d).__name__}")
                    sample = UnifiedSample.from_dict(d)
                except (ValueError, TypeError, SampleError) as exc:
                    self.report(path, f"malformed record: {exc}", line=lineno)
                    continue
                sample.image_path = str(self.root / sample.image_path)
                if sample.mask_path is not None:
                    sample.mask_path = str(self.root / sample.mask_path)
                missing = [p for p in (sample.image_path, sample.mask_path)
                           if p is not None and not Path(p).is_file()]
                if missing:
                    self.report(missing[0], f"file listed at line {lineno} of {path} is missing")
                    continue
                yield sample
