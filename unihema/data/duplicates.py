"""Duplicate images within a dataset, across its splits and across datasets, and the record of
a run's training images that evaluation compares against.

Images are compared file by file, never sample by sample: samples that share an image file by
design (several tasks of one field, or cells of one field addressed as ``<field>::crop/...``
windows, :func:`image_file`) are one image here, the whole file. Two files are

* ``exact`` duplicates when their bytes are identical (sha256, :func:`imagehash.file_sha256`;
  a file listed in two splits is its own exact duplicate), and
* ``near`` duplicates when their perceptual hashes are at most
  :data:`imagehash.NEAR_THRESHOLD` bits apart (re-encoded, resized, slightly cropped copies).

Findings are warnings: ``data check`` lists them (leaks across splits first) and writes them to
its JSON, but they change neither its exit status nor what training loads.

:class:`TrainImages` is the compact record a training run writes as ``train_images.json`` (run
folder, every checkpoint, the saved model): one sha256 and one perceptual hash per distinct
training image. ``unihema eval`` counts the evaluated items whose image is an exact or near
duplicate of one of them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from tqdm import tqdm

from unihema.data import imagehash as ih
from unihema.data import io
from unihema.data.catalog import DataError

logger = logging.getLogger(__name__)

#: file name of the training-image record (run folder, checkpoints, saved models)
TRAIN_IMAGES = "train_images.json"
#: identifies the perceptual hash, so that a record made by another one is not misread
PHASH_METHOD = (f"dct{ih.HASH_BITS}-gray{ih.THUMB}-grid{ih.GRID}-"
                f"crops{len(ih.PROBE_CROPS)}x{len(ih.PROBE_CROPS)}")
#: scopes of a finding, in report order
SCOPES = ("across datasets", "across splits", "within split")

PathLike = Union[str, Path]


def image_file(path: str) -> str:
    """The file an image path reads: the path itself, or the image a ``::crop/`` window is cut
    from (:func:`unihema.data.io.crop_image_path`)."""
    crop = io.split_crop_path(path)
    return path if crop is None else crop[0]


def hash_image(path: str, image: Optional[np.ndarray] = None, *, decode: bool = True
               ) -> Tuple[str, Optional[np.ndarray]]:
    """``(sha256, perceptual hashes uint64 [NUM_PROBES, 2] or None)`` of the file that
    ``path`` reads (:func:`image_file`: a window's whole image).

    ``image`` is the file's already decoded pixels (``data check`` decodes every image anyway);
    without it the file is decoded, unless ``decode=False`` (exact hash only).

    Raises:
        ImageReadError: the file cannot be read or decoded (naming it).
    """
    file = image_file(path)
    sha = ih.file_sha256(file)
    if image is None and decode:
        if file != path:
            # through the window cache of io: the windows read next reuse this decode
            width, height = io.image_size(file)
            image = io.read_image(io.crop_image_path(file, (0, 0, width, height)))
        else:
            image = io.read_image(file)
    return sha, None if image is None else ih.perceptual_hash(image)


def hash_files(paths: Sequence[str], *, workers: int = 0, progress: bool = False,
               desc: str = "hash images"
               ) -> List[Union[Tuple[str, Optional[np.ndarray]], DataError]]:
    """:func:`hash_image` of every path, in order, on ``workers`` threads (0: one per core,
    at most 8); an unreadable file gives its :class:`DataError` instead of hashes."""
    def one(p: str):
        try:
            return hash_image(p)
        except DataError as exc:
            return exc

    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(one, paths), total=len(paths), desc=desc,
                         disable=not progress, leave=False))


# ----------------------------------------------------------------------------- findings
@dataclass(frozen=True)
class ImageRef:
    """One image file as a split of a dataset (adapter key and root) lists it."""

    dataset: str
    split: str
    path: str
    root: str = ""

    def show(self) -> str:
        """``dataset/split:path``, the path relative to the dataset root where it lies below."""
        path = self.path
        try:
            path = Path(self.path).resolve().relative_to(Path(self.root).resolve()).as_posix()
        except ValueError:
            pass
        return f"{self.dataset}/{self.split}:{path}"

    def to_dict(self) -> Dict[str, str]:
        return {"dataset": self.dataset, "root": self.root, "split": self.split,
                "file": self.path}


@dataclass(frozen=True)
class Duplicate:
    """Two image files with the same bytes (``exact``) or ``distance`` bits of perceptual hash
    apart (``near``)."""

    kind: str
    a: ImageRef
    b: ImageRef
    distance: int = 0

    @property
    def scope(self) -> str:
        if (self.a.dataset, self.a.root) != (self.b.dataset, self.b.root):
            return SCOPES[0]
        return SCOPES[1] if self.a.split != self.b.split else SCOPES[2]

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "scope": self.scope, "distance": self.distance,
                "same_file": self.a.path == self.b.path,
                "a": self.a.to_dict(), "b": self.b.to_dict()}


@dataclass
class ImageSet:
    """Distinct image files of one dataset (one entry per split and file), with their hashes."""

    dataset: str
    root: str
    refs: List[ImageRef] = field(default_factory=list)
    sha256: List[str] = field(default_factory=list)
    phash: List[Optional[np.ndarray]] = field(default_factory=list)

    def add(self, ref: ImageRef, sha: str, phash: Optional[np.ndarray]) -> None:
        self.refs.append(ref)
        self.sha256.append(sha)
        self.phash.append(phash)

    def __len__(self) -> int:
        return len(self.refs)


def _near(a: ImageSet, b: Optional[ImageSet]) -> List[Tuple[int, int, int]]:
    """Near pairs between the distinct contents (one file per sha256) of ``a`` and ``b``
    (within ``a`` when ``b`` is None), expanded to every file holding those contents."""
    def reps(s: ImageSet) -> Tuple[List[int], Dict[str, List[int]]]:
        members: Dict[str, List[int]] = {}
        for i, sha in enumerate(s.sha256):
            members.setdefault(sha, []).append(i)
        return [m[0] for m in members.values() if s.phash[m[0]] is not None], members

    ra, ma = reps(a)
    rb, mb = (ra, ma) if b is None else reps(b)
    other = a if b is None else b
    if not ra or not rb:
        return []
    pairs = ih.near_pairs(np.stack([a.phash[i] for i in ra]),
                          None if b is None else np.stack([other.phash[j] for j in rb]))
    out = []
    for i, j, d in pairs:
        ia, jb = ra[i], rb[j]
        if a.sha256[ia] == other.sha256[jb]:
            continue  # the same bytes: an exact finding already
        out += [(x, y, d) for x in ma[a.sha256[ia]] for y in mb[other.sha256[jb]]]
    return out


def find_duplicates(images: ImageSet, against: Sequence[ImageSet] = ()) -> List[Duplicate]:
    """Exact and near duplicates within ``images`` and between it and each of ``against``
    (never between two ``against`` sets), in report order: scope (:data:`SCOPES`), kind, distance.

    An exact group of k files is reported as k - 1 pairs, each with the group's first file.
    """
    found: List[Duplicate] = []
    groups: Dict[str, List[ImageRef]] = {}
    for ref, sha in zip(images.refs, images.sha256):
        groups.setdefault(sha, []).append(ref)
    for members in groups.values():
        found += [Duplicate("exact", members[0], r) for r in members[1:]]
    found += [Duplicate("near", images.refs[i], images.refs[j], d)
              for i, j, d in _near(images, None)]
    for other in against:
        for ref, sha in zip(other.refs, other.sha256):
            found += [Duplicate("exact", r, ref) for r in groups.get(sha, [])[:1]]
        found += [Duplicate("near", images.refs[i], other.refs[j], d)
                  for i, j, d in _near(images, other)]
    split_rank = {r.split: k for k, r in reversed(list(enumerate(images.refs)))}

    def order(f: Duplicate) -> Duplicate:  # within the dataset: earlier split, then path first
        if f.scope == SCOPES[0]:
            return f
        ka, kb = ((split_rank[r.split], r.path) for r in (f.a, f.b))
        return f if ka <= kb else dataclasses.replace(f, a=f.b, b=f.a)

    found = [order(f) for f in found]
    found.sort(key=lambda f: (SCOPES.index(f.scope), f.kind != "exact", f.distance,
                              f.a.split, f.a.path, f.b.dataset, f.b.split, f.b.path))
    return found


@dataclass
class DuplicateReport:
    """What ``data check`` found: the findings and what was searched."""

    findings: List[Duplicate]
    near_searched: bool
    images: int
    against: List[Dict[str, Any]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def counts(self) -> Dict[str, Dict[str, int]]:
        out = {s: {"exact": 0, "near": 0} for s in SCOPES}
        for f in self.findings:
            out[f.scope][f.kind] += 1
        return out

    def to_dict(self) -> Dict[str, Any]:
        return {"images": self.images, "near_searched": self.near_searched,
                "near_threshold_bits": ih.NEAR_THRESHOLD, "hash_bits": ih.HASH_BITS,
                "against": self.against, "counts": self.counts(), "notes": self.notes,
                "findings": [f.to_dict() for f in self.findings]}

    def format(self, max_lines: int = 50) -> List[str]:
        """Report lines: counts per scope, then each finding with both files."""
        counts = self.counts()
        total = len(self.findings)
        lines = [f"\nduplicate images: {total} finding(s) among {self.images} distinct "
                 f"file(s) (warnings; they do not change the exit status)"]
        if not self.near_searched:
            lines.append("  exact copies only: --fast decodes no image, so near duplicates "
                         "were not searched")
        for a in self.against:
            lines.append(f"  against {a['dataset']} at {a['root']} ({a['images']} files)")
        lines += [f"  note: {n}" for n in self.notes[:max_lines]]
        for scope in SCOPES:
            if scope == SCOPES[0] and not self.against:
                continue
            c = counts[scope]
            leak = scope != SCOPES[2] and (c["exact"] or c["near"])
            lines.append(f"  {scope}: {c['exact']} exact, {c['near']} near"
                         + ("   <- LEAK" if leak else ""))
        for f in self.findings[:max_lines]:
            how = (("same file" if f.a.path == f.b.path else "same bytes") if f.kind == "exact"
                   else f"{f.distance} of {ih.HASH_BITS} bits differ")
            lines.append(f"    {f.kind:5s} {f.scope:15s} {f.a.show()}  ~  {f.b.show()}  "
                         f"({how})")
        if total > max_lines:
            lines.append(f"    ... and {total - max_lines} more (see --json)")
        return lines


# ----------------------------------------------------------------------------- training record
@dataclass
class TrainImages:
    """sha256 and whole-image perceptual hash of each distinct training image of a run."""

    sha256: List[str]
    phash: np.ndarray  # uint64 [N, 1, 2]; a row of zeros marks an image that was not decoded
    decoded: np.ndarray  # bool [N]
    sources: List[str] = field(default_factory=list)

    @classmethod
    def from_paths(cls, paths: Iterable[str], sources: Sequence[str] = (), *, workers: int = 0,
                   progress: bool = False) -> "TrainImages":
        """Hash every distinct file of ``paths`` (decoding each once, on threads)."""
        unique = list(dict.fromkeys(image_file(p) for p in paths))
        by_sha: Dict[str, Optional[np.ndarray]] = {}
        for path, got in zip(unique, hash_files(unique, workers=workers, progress=progress,
                                                desc="hash training images")):
            if isinstance(got, DataError):
                logger.warning("train_images: %s", got)
                continue
            sha, ph = got
            if by_sha.get(sha) is None:
                by_sha[sha] = ph
        shas = sorted(by_sha)
        phash = np.zeros((len(shas), 1, 2), dtype=np.uint64)
        decoded = np.zeros(len(shas), dtype=bool)
        for k, sha in enumerate(shas):
            if by_sha[sha] is not None:
                phash[k, 0], decoded[k] = by_sha[sha][0], True
        return cls(shas, phash, decoded, list(sources))

    def to_dict(self) -> Dict[str, Any]:
        return {"format": "unihema train_images", "version": 1,
                "exact": "sha256 of the file bytes", "perceptual": PHASH_METHOD,
                "near_threshold_bits": ih.NEAR_THRESHOLD, "sources": self.sources,
                "images": len(self.sha256), "sha256": self.sha256,
                "phash": [ih.to_hex(h[0]) if ok else None
                          for h, ok in zip(self.phash, self.decoded)]}

    def write(self, path: PathLike) -> Path:
        from unihema.utils import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), separators=(",", ":")) + "\n")
        return Path(path)

    @classmethod
    def read(cls, path: PathLike) -> "TrainImages":
        """Read a ``train_images.json``.

        A record made with another perceptual hash keeps its exact hashes only (a warning says
        so): its near-duplicate counts cannot be trusted.

        Raises:
            DataError: not such a record (naming the file and what was expected).
        """
        path = Path(path)
        expected = ("a JSON object with 'sha256' (64-hex-digit strings) and 'phash' (32-hex-"
                    "digit strings or null) lists of equal length, as training writes it")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            shas, hashes = list(raw["sha256"]), list(raw["phash"])
            if len(shas) != len(hashes) or not all(
                    isinstance(s, str) and len(s) == 64 for s in shas):
                raise ValueError("lists of unequal length or a malformed sha256")
            phash = np.zeros((len(shas), 1, 2), dtype=np.uint64)
            decoded = np.zeros(len(shas), dtype=bool)
            if raw.get("perceptual") != PHASH_METHOD:
                logger.warning("%s: perceptual hash '%s' is not this version's '%s'; only exact "
                               "duplicates are counted", path, raw.get("perceptual"),
                               PHASH_METHOD)
                hashes = [None] * len(shas)
            for k, h in enumerate(hashes):
                if h is not None:
                    phash[k, 0], decoded[k] = ih.from_hex(h), True
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"{path}: not a training-image record ({exc}); expected "
                            f"{expected}") from None
        return cls(shas, phash, decoded, list(raw.get("sources") or []))

    def overlap(self, paths: Sequence[str],
                cache: Optional[Dict[str, Any]] = None) -> Dict[str, int]:
        """How many of ``paths`` (one per evaluated item; repeats allowed) are exact or near
        duplicates of a training image: ``{"items", "exact", "near"}``.

        ``cache`` (path -> hashes or error) is shared between calls, so that models evaluated
        on the same entry hash its images once. An unreadable file counts as no duplicate.
        """
        cache = {} if cache is None else cache
        paths = [image_file(p) for p in paths]
        unique = list(dict.fromkeys(paths))
        todo = [p for p in unique if p not in cache]
        for p, got in zip(todo, hash_files(todo)):
            cache[p] = got
        known = set(self.sha256)
        status: Dict[str, str] = {}
        near_paths, near_hashes = [], []
        for p in unique:
            got = cache[p]
            if isinstance(got, DataError):
                continue
            if got[0] in known:
                status[p] = "exact"
            elif got[1] is not None:
                near_paths.append(p)
                near_hashes.append(got[1])
        if near_paths and self.decoded.any():
            for i, _, _ in ih.near_pairs(np.stack(near_hashes), self.phash[self.decoded]):
                status[near_paths[i]] = "near"
        return {"items": len(paths),
                "exact": sum(status.get(p) == "exact" for p in paths),
                "near": sum(status.get(p) == "near" for p in paths)}


def find_train_images(folder: PathLike, *others: Optional[PathLike]) -> Optional[Path]:
    """The first ``train_images.json`` in ``folder`` or the other folders given, or None."""
    for f in (folder, *others):
        if f is not None and (Path(f) / TRAIN_IMAGES).is_file():
            return Path(f) / TRAIN_IMAGES
    return None


__all__ = [
    "Duplicate", "DuplicateReport", "ImageRef", "ImageSet", "PHASH_METHOD", "SCOPES",
    "TRAIN_IMAGES", "TrainImages", "find_duplicates", "find_train_images", "hash_files",
    "hash_image", "image_file",
]
