"""``unihema data check``: validate a dataset on disk and summarise it.

The check reads a dataset through its adapter with ``on_error="skip"`` (so every problem is
listed, not just the first), then verifies each sample against the files: the image exists and
its stored size matches the record, the mask exists, has the image's size and only values the
record maps. Every image is decoded in full by default, which catches truncated files;
``fast=True`` reads only the image headers.

What is a problem (``ok`` is false, ``unihema data check`` exits 1) and what is a note:

* problems: every problem an adapter reports (a missing or unreadable image, a VOC ``<size>``
  unlike the image, a split-list id without an image, a repeated id, an empty split list, a box
  outside the image, an unknown label, ...), an image or mask unlike its record, and a split
  that loads no sample (it would train or test on nothing), reported as such even when other
  problems explain it;
* notes: documented repairs of the source's data, and, when every split is checked, each image
  file that no split takes (:meth:`DatasetAdapter.images_in_no_split`; held-out images are
  legitimate, an accidental omission is seen in the list).

It also looks for duplicate image files (:mod:`unihema.data.duplicates`): exact copies and near
duplicates within a split, across splits and against other datasets (``against``), hashing each
distinct file once from the pixels the check decodes anyway. They are warnings in the report,
never problems: ``ok`` ignores them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from unihema.data import io
from unihema.data.catalog import ADAPTERS, DataError, Problem, get_adapter
from unihema.data.duplicates import (
    DuplicateReport,
    ImageRef,
    ImageSet,
    find_duplicates,
    hash_files,
    hash_image,
    image_file,
)
from unihema.data.sample import TASKS, UnifiedSample, summarize


@dataclass
class SplitReport:
    split: str
    summary: Dict[str, Any]
    problems: List[Problem] = field(default_factory=list)
    #: remarks that are not errors (documented repairs of the source's data)
    notes: List[Problem] = field(default_factory=list)


@dataclass
class CheckReport:
    """The result of checking one dataset: a summary and the problems of each split."""

    dataset: str
    root: str
    splits: List[SplitReport]
    #: duplicate images (warnings); None when the search was turned off
    duplicates: Optional[DuplicateReport] = None
    #: notes on the whole dataset: images that no split takes
    dataset_notes: List[Problem] = field(default_factory=list)

    @property
    def problems(self) -> List[Problem]:
        return [p for s in self.splits for p in s.problems]

    @property
    def notes(self) -> List[Problem]:
        return [n for s in self.splits for n in s.notes] + list(self.dataset_notes)

    @property
    def ok(self) -> bool:
        return not self.problems

    def tasks(self) -> List[str]:
        """Tasks with at least one sample in some split."""
        return [t for t in TASKS if any(s.summary["tasks"].get(t, 0) for s in self.splits)]

    def to_dict(self) -> Dict[str, Any]:
        return {
            "dataset": self.dataset,
            "root": self.root,
            "ok": self.ok,
            "splits": {
                s.split: {"summary": s.summary, "problems": [str(p) for p in s.problems],
                          "notes": [str(n) for n in s.notes]}
                for s in self.splits
            },
            "duplicates": None if self.duplicates is None else self.duplicates.to_dict(),
            "dataset_notes": [str(n) for n in self.dataset_notes],
        }

    def format(self, max_problems: int = 50) -> str:
        """A human-readable report: per split, counts per task and class, then problems."""
        lines = [f"dataset {self.dataset} at {self.root}"]
        for s in self.splits:
            sm = s.summary
            lines.append(f"\n[{s.split}] {sm['samples']} samples")
            tasks = ", ".join(f"{t} {n}" for t, n in sm["tasks"].items() if n)
            lines.append(f"  tasks: {tasks or 'none'}")
            for key, title in (
                ("boxes_per_class", "boxes"),
                ("labels", "labels"),
                ("mask_classes", "mask classes (samples)"),
                ("qa_types", "questions"),
                ("attributes", "attributes (samples)"),
            ):
                if sm[key]:
                    body = ", ".join(f"{k} {v}" for k, v in sm[key].items())
                    lines.append(f"  {title}: {body}")
            if s.problems:
                lines.append(f"  problems: {len(s.problems)}")
        if self.duplicates is not None:
            lines += self.duplicates.format(max_problems)
        notes = self.notes
        if notes:
            lines.append(f"\n{len(notes)} note(s) (documented repairs and images in no split, "
                         f"not problems):")
            for n in notes[:max_problems]:
                lines.append(f"  {n}")
            if len(notes) > max_problems:
                lines.append(f"  ... and {len(notes) - max_problems} more (see --json)")
        problems = self.problems
        if problems:
            lines.append(f"\n{len(problems)} problem(s):")
            for p in problems[:max_problems]:
                lines.append(f"  {p}")
            if len(problems) > max_problems:
                lines.append(f"  ... and {len(problems) - max_problems} more (see --json)")
        else:
            lines.append("\nno problems found")
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> None:
        from unihema.utils import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2))


def check_sample_files(sample: UnifiedSample, fast: bool = False,
                       on_image: Optional[Callable[[np.ndarray], None]] = None) -> List[Problem]:
    """Problems of one sample's files (image and mask); empty when everything matches.

    ``on_image`` is called with the decoded image (``uint8 [H, W, 3]``; not under ``fast``),
    so that other passes reuse the decode.
    """
    problems: List[Problem] = []
    try:
        if fast:
            size = io.image_size(sample.image_path)
        else:
            img = io.read_image(sample.image_path)
            size = (img.shape[1], img.shape[0])
            if on_image is not None:
                on_image(img)
    except DataError as exc:
        return [Problem(sample.image_path, str(exc))]
    if size != (sample.width, sample.height):
        problems.append(Problem(
            sample.image_path,
            f"image is {size[0]}x{size[1]} but the record says {sample.width}x{sample.height}",
        ))
    if sample.mask_path is not None:
        classes = sorted(set((sample.mask_values or {}).values()))
        try:
            mask = io.read_mask(sample.mask_path, sample.mask_values or {}, classes)
        except DataError as exc:
            problems.append(Problem(sample.mask_path, str(exc)))
        else:
            if mask.shape != (size[1], size[0]):
                problems.append(Problem(
                    sample.mask_path,
                    f"mask is {mask.shape[1]}x{mask.shape[0]}, image is {size[0]}x{size[1]}",
                ))
            elif not np.any(mask >= 0):
                problems.append(Problem(sample.mask_path, "mask holds no labelled pixel"))
    return problems


def check_dataset(
    name: str,
    root: str | Path,
    splits: Optional[Sequence[str]] = None,
    *,
    fast: bool = False,
    progress: bool = True,
    options: Optional[Dict[str, Any]] = None,
    duplicates: bool = True,
    against: Sequence[Tuple[str, str]] = (),
) -> CheckReport:
    """Check every split (or the given ones) of dataset ``name`` stored at ``root``.

    ``options`` are extra keyword arguments of the adapter (``{"spec": "my.yaml"}`` for the
    generic adapter). ``duplicates=False`` skips the duplicate search; ``against`` lists
    ``(adapter key, root)`` of other datasets whose images (every split) are compared too.
    """
    adapter_cls = ADAPTERS.get(name)
    adapter = adapter_cls(root, on_error="skip", **(options or {}))
    reports = []
    images = ImageSet(name, str(root))
    for split in splits or adapter.splits:
        adapter.problems = []
        adapter.notes = []
        try:
            samples = adapter.load(split)
        except DataError as exc:  # a split-level failure (missing index file, ...)
            reports.append(SplitReport(split, summarize([]), [Problem(str(root), str(exc))]))
            continue
        problems = list(adapter.problems)
        notes = list(adapter.notes)
        seen = set()
        hashed = set()  # image files of this split: hashed once, however many samples use one
        for s in tqdm(samples, desc=f"check {name}/{split}", disable=not progress, leave=False):
            if s.sample_id in seen:
                problems.append(Problem(s.image_path, f"duplicate sample_id '{s.sample_id}'"))
            seen.add(s.sample_id)
            file = image_file(s.image_path)
            hook = None
            if duplicates and file not in hashed:
                hashed.add(file)
                if file == s.image_path and not fast:  # hash the pixels the check decodes
                    def hook(img, file=file):
                        images.add(ImageRef(name, split, file, str(root)),
                                   *hash_image(file, img))
                else:  # a window of a field (hashed whole) or --fast (bytes only)
                    try:
                        images.add(ImageRef(name, split, file, str(root)),
                                   *hash_image(s.image_path, decode=not fast))
                    except DataError:
                        pass  # an unreadable file is a problem of the check already
            problems.extend(check_sample_files(s, fast=fast, on_image=hook))
        if not samples:  # reported even when other problems say why: it trains on nothing
            problems.append(Problem(str(root), f"split '{split}' is empty: no sample loaded"))
        reports.append(SplitReport(split, summarize(samples), problems, notes))
    dataset_notes: List[Problem] = []
    if splits is None or set(splits) >= set(adapter.splits):
        adapter.problems = []
        try:
            dataset_notes = adapter.images_in_no_split()
        except DataError as exc:  # a list that cannot be read is a split's problem already
            dataset_notes = [Problem(str(root), f"images in no split not listed: {exc}")]
    dups = None
    if duplicates:
        others, notes_ = [], []
        for key, other_root in against:
            others.append(hash_dataset(key, other_root, progress=progress, notes=notes_))
        dups = DuplicateReport(
            find_duplicates(images, others), near_searched=not fast,
            images=len({r.path for r in images.refs}),
            against=[{"dataset": o.dataset, "root": o.root, "images": len(o)} for o in others],
            notes=notes_)
    return CheckReport(name, str(root), reports, dups, dataset_notes)


def hash_dataset(name: str, root: str, *, progress: bool = True,
                 notes: Optional[List[str]] = None) -> ImageSet:
    """Hashes of every image file of every split of another dataset (``data check --against``).

    Splits or files that cannot be read are left out, each with a line in ``notes``.

    Raises:
        KeyError: ``name`` is not a registered adapter (listing the valid keys).
        FileNotFoundError: ``root`` does not exist.
    """
    if not Path(root).exists():
        raise FileNotFoundError(f"--against {name}={root}: the folder '{root}' does not exist")
    notes = [] if notes is None else notes
    adapter = get_adapter(name, root, on_error="skip")
    refs: List[ImageRef] = []
    for split in adapter.splits:
        try:
            samples = adapter.load(split)
        except DataError as exc:
            notes.append(f"{name}/{split} at {root} not read: {exc}")
            continue
        for path in dict.fromkeys(image_file(s.image_path) for s in samples):
            refs.append(ImageRef(name, split, path, str(root)))
    out = ImageSet(name, str(root))
    got = hash_files([r.path for r in refs], progress=progress, desc=f"hash {name}")
    for ref, g in zip(refs, got):
        if isinstance(g, DataError):
            notes.append(f"{name}: left out: {g}")
        else:
            out.add(ref, *g)
    return out
