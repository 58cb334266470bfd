"""Shared machinery of the single-cell classification adapters (not an adapter itself).

Most classification sources are crops stored as a folder per class. :class:`CropClassifier`
gives their adapters one way to

* map a raw class name (a folder name, a CSV value, a code) to a canonical term through the
  adapter's explicit ``label_map`` (matched after :func:`unihema.data.vocab.normalize`, so case
  and ``_``/``-``/space separators do not matter), reporting unknown names with the expected ones;
* build a crop record (:meth:`CropClassifier.crop`): absolute image path, the stored size read
  from the image header, ``label`` with the dataset's class list as ``label_set``, the raw name
  in ``meta["raw_label"]`` and ``meta["kind"] = "crop"``;
* split sources without an official split with
  :func:`dataset_adapters._splits.assign_splits` (deterministic, hash based, patient-aware
  when a patient id is known);
* scan class folders (:meth:`CropClassifier.scan_classes`), optionally one level below group
  folders (domains, microscopes), reporting every folder whose name is not a class.

:class:`PatientTable` adds what the patient-level sets need: a table of one row per patient
(id and diagnosis; header names matched from a list of accepted spellings) and the per-patient
image folders, with stray folders and patients without images reported.

``write_example`` helpers for the native layouts live here too (:func:`write_crops`).
"""

from __future__ import annotations

from pathlib import Path
from typing import (Callable, ClassVar, Dict, Hashable, Iterable, List, Mapping, Optional,
                    Sequence, Tuple, TypeVar)

from dataset_adapters._examples import cell_crop, save_image
from dataset_adapters._splits import assign_splits as split_keys  # the name adapters used
from unihema.data import io, vocab
from unihema.data.catalog import DataError, DatasetAdapter
from unihema.data.formats import IMAGE_EXTENSIONS, read_csv_table, scan_class_folders
from unihema.data.sample import UnifiedSample

T = TypeVar("T")


def label_lookup(label_map: Mapping[str, str]) -> Dict[str, str]:
    """``label_map`` keyed by normalised raw names; raises when two spellings normalise alike
    to different terms or a target is not canonical (a programming error in the adapter)."""
    out: Dict[str, str] = {}
    for raw, name in label_map.items():
        if not vocab.is_canonical(name):
            raise ValueError(f"label map target '{name}' (for '{raw}') is not a canonical term")
        key = vocab.normalize(raw)
        if out.get(key, name) != name:
            raise ValueError(f"raw labels normalising to '{key}' map to '{out[key]}' and '{name}'")
        out[key] = name
    return out


def classes_of(label_map: Mapping[str, str]) -> Tuple[str, ...]:
    """The canonical classes of a label map, in first-seen order (several raw names may share
    one canonical term)."""
    return tuple(dict.fromkeys(label_map.values()))


class CropClassifier(DatasetAdapter):
    """Base of the crop-classification adapters; subclasses set ``label_map`` and ``_load``."""

    tasks = ("classify",)
    #: raw class name as the source writes it -> canonical term
    label_map: ClassVar[Mapping[str, str]] = {}
    #: seed of :func:`~unihema.data.splits.seeded_split` for sources without an official split
    split_seed: ClassVar[int] = 0
    #: what ``meta["kind"]`` says: single-cell ``crop`` (or ``field`` for smear photos)
    kind: ClassVar[str] = "crop"
    #: class folders deliberately not read (named in the adapter's docstring with the reason)
    ignore_folders: ClassVar[Tuple[str, ...]] = ()

    # ------------------------------------------------------------------ labels
    @classmethod
    def label_of(cls, raw: str) -> Optional[str]:
        """The canonical class of a raw name, or ``None`` when the name is not in the map."""
        lookup = cls.__dict__.get("_lookup")
        if lookup is None:
            lookup = label_lookup(cls.label_map)
            cls._lookup = lookup  # type: ignore[attr-defined]
        return lookup.get(vocab.normalize(raw))

    def expected_names(self) -> str:
        return ", ".join(sorted(self.label_map, key=str.lower))

    def unknown_label(self, file: Path | str, raw: str, what: str = "class",
                      line: Optional[int] = None, extra: str = "") -> None:
        """Report a raw name missing from ``label_map`` (names the expected ones)."""
        self.report(file, f"unknown {what} '{raw}'{extra}; expected one of: "
                          f"{self.expected_names()}", line=line)

    # ------------------------------------------------------------------ records
    def crop(self, split: str, path: Path, label: str, raw: str, sample_id: str, *,
             patient_id: Optional[str] = None, **meta) -> Optional[UnifiedSample]:
        """A classification record of the image at ``path`` (its size read from the header);
        ``None`` after reporting an image that cannot be opened."""
        try:
            width, height = io.image_size(path)
        except DataError as exc:
            self.report(path, str(exc))
            return None
        return UnifiedSample(
            dataset=self.name, split=split, sample_id=sample_id, image_path=str(path),
            width=width, height=height, patient_id=patient_id, label=label,
            label_set=list(self.classes["classify"]),
            meta={"kind": self.kind, "raw_label": raw, "license": self.license, **meta},
        )

    # ------------------------------------------------------------------ splits
    @classmethod
    def assign_splits(cls, items: Sequence[T], key: Callable[[T], str],
                      group: Optional[Callable[[T], Optional[Hashable]]] = None
                      ) -> Dict[str, str]:
        """``key(item) -> split`` for sources without an official split (seeded, hash based;
        items of one ``group`` (patient) always share a split)."""
        return split_keys([key(i) for i in items],
                          None if group is None else [group(i) for i in items],
                          seed=cls.split_seed)

    # ------------------------------------------------------------------ folders
    def scan_classes(self, base: Path, *, groups: bool = False
                     ) -> List[Tuple[Path, str, str, Optional[str]]]:
        """``(image, canonical label, raw folder name, group)`` of the crops under ``base``.

        ``base/<class>/**/<image>``; with ``groups``, class folders may also sit one level lower,
        ``base/<group>/<class>/**/<image>`` (the group, a domain or a microscope, is returned),
        which is chosen when no folder directly under ``base`` is a class. A folder whose name is
        not in ``label_map`` is reported with the number of images it holds.
        """
        if not base.is_dir():
            raise DataError(f"{self.name}: {base} is not a folder. Expected layout:\n"
                            f"{self.layout()}")
        subdirs = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
        if groups and subdirs and not any(self.label_of(p.name) for p in subdirs):
            out = []
            for g in subdirs:
                out.extend((p, label, raw, g.name) for p, label, raw, _ in self.scan_classes(g))
            return out
        out: List[Tuple[Path, str, str, Optional[str]]] = []
        unknown: Dict[str, int] = {}
        skipped: List[Path] = []
        found = scan_class_folders(base, skipped=skipped)
        for path in skipped:  # other files (read-me, Thumbs.db) are not samples; images are
            if path.parent == base and path.suffix.lower() in IMAGE_EXTENSIONS:
                self.report(path, "image lies outside any class folder (label unknown)")
        ignored = {vocab.normalize(f) for f in self.ignore_folders}
        for path, folder in found:
            if vocab.normalize(folder) in ignored:
                continue
            label = self.label_of(folder)
            if label is None:
                unknown[folder] = unknown.get(folder, 0) + 1
            else:
                out.append((path, label, folder, None))
        for folder, n in sorted(unknown.items()):
            self.unknown_label(base / folder, folder, "class folder",
                               extra=f" ({n} images not read)")
        if not out and not unknown:
            self.report(base, f"no images found (extensions {', '.join(IMAGE_EXTENSIONS)}). "
                              f"Expected layout:\n{self.layout()}")
        return out

    def load_folders(self, split: str, base: Path, *, groups: bool = False,
                     patient: Optional[Callable[[Path], Optional[str]]] = None
                     ) -> Iterable[UnifiedSample]:
        """Samples of ``split`` from class folders under ``base``, split by
        :meth:`assign_splits` (grouped by ``patient(path)`` when given)."""
        items = self.scan_classes(base, groups=groups)
        ids = {it[0]: it[0].relative_to(base).with_suffix("").as_posix() for it in items}
        pid = {it[0]: (patient(it[0]) if patient else None) for it in items}
        splits = self.assign_splits(items, key=lambda it: ids[it[0]],
                                    group=lambda it: pid[it[0]])
        for path, label, raw, grp in items:
            if splits[ids[path]] != split:
                continue
            meta = {"group": grp} if grp is not None else {}
            sample = self.crop(split, path, label, raw, ids[path], patient_id=pid[path], **meta)
            if sample is not None:
                yield sample


class PatientTable(CropClassifier):
    """Base of the patient-level sets: per-patient folders of cell images plus a table of one
    row per patient (its diagnosis). Subclasses set ``patient_columns`` and
    ``diagnosis_columns`` (accepted header names, matched case-insensitively with ``_`` and
    space interchangeable) and ``diagnosis_map`` (raw diagnosis -> canonical term)."""

    patient_columns: ClassVar[Tuple[str, ...]] = ("patient_id", "patient")
    diagnosis_columns: ClassVar[Tuple[str, ...]] = ("diagnosis", "label")
    diagnosis_map: ClassVar[Mapping[str, str]] = {}
    #: default table file names, tried in order when no ``table=`` is given
    table_names: ClassVar[Tuple[str, ...]] = ()

    def __init__(self, root, *, on_error: str = "raise", table: Optional[str] = None) -> None:
        super().__init__(root, on_error=on_error)
        self.table_name = table

    def table_path(self) -> Path:
        """The patient table: ``table=`` when given, else the first of ``table_names`` found,
        else the only ``*.csv`` in the root."""
        if self.table_name is not None:
            return self.root / self.table_name
        for name in self.table_names:
            if (self.root / name).is_file():
                return self.root / name
        found = sorted(self.root.glob("*.csv"))
        if len(found) == 1:
            return found[0]
        raise DataError(
            f"{self.name}: no patient table in {self.root}: expected "
            f"{' or '.join(self.table_names) or 'one *.csv'}, found "
            f"{', '.join(p.name for p in found) or 'no CSV'} (pass table=... to choose)")

    def read_patients(self) -> Dict[str, Tuple[str, str, int]]:
        """``patient id -> (canonical diagnosis, raw diagnosis, line)``; bad rows reported."""
        path = self.table_path()
        try:
            rows = read_csv_table(path)
        except DataError as exc:
            self.report(path, str(exc))
            return {}
        header = [k for k in (rows[0] if rows else {}) if k != "_line"]

        def column(accepted: Sequence[str], what: str) -> str:
            norm = {vocab.normalize(h): h for h in header}
            for name in accepted:
                if vocab.normalize(name) in norm:
                    return norm[vocab.normalize(name)]
            raise DataError(f"{self.name}: {path}:1: no {what} column; expected one of "
                            f"{list(accepted)}, columns found: {header}")

        if not rows:
            self.report(path, "the patient table has no rows")
            return {}
        pcol = column(self.patient_columns, "patient id")
        dcol = column(self.diagnosis_columns, "diagnosis")
        lookup = label_lookup(self.diagnosis_map)
        out: Dict[str, Tuple[str, str, int]] = {}
        for row in rows:
            line = int(row["_line"])
            pid, raw = str(row[pcol]), str(row[dcol])
            if not pid:
                self.report(path, f"empty {pcol}", line=line)
                continue
            if pid in out:
                self.report(path, f"patient '{pid}' is listed twice (first at line "
                                  f"{out[pid][2]})", line=line)
                continue
            name = lookup.get(vocab.normalize(raw))
            if name is None:
                self.report(path, f"unknown {dcol} '{raw}'; expected one of: "
                                  f"{', '.join(self.diagnosis_map)}", line=line)
                continue
            out[pid] = (name, raw, line)
        return out

    def patient_folders(self, patients: Mapping[str, object]
                        ) -> Dict[str, Tuple[Path, Optional[str]]]:
        """``patient id -> (folder, group)``: ``<root>/<patient>/`` or
        ``<root>/<group>/<patient>/``. Folders that are neither a listed patient nor hold one,
        and listed patients without a folder, are reported."""
        out: Dict[str, Tuple[Path, Optional[str]]] = {}
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()
                        and not p.name.startswith(".")):
            if d.name in patients:
                out[d.name] = (d, None)
                continue
            subs = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
            inner = [p for p in subs if p.name in patients]
            if not inner:
                self.report(d, f"folder '{d.name}' is not a patient of {self.table_path().name} "
                               f"and holds no patient folder")
                continue
            for p in subs:
                if p.name in patients:
                    out[p.name] = (p, d.name)
                else:
                    self.report(p, f"folder '{p.name}' is not a patient of "
                                   f"{self.table_path().name}")
        for pid in patients:
            if pid not in out:
                self.report(self.table_path(), f"patient '{pid}' has no image folder in "
                                               f"{self.root}", line=patients[pid][2])
        return out


# ----------------------------------------------------------------------------- examples
def write_crops(root: Path, files: Sequence[str], size: Tuple[int, int] = (64, 64)) -> List[Path]:
    """Write a generated single-cell crop (``size`` = width, height) at each relative path in
    ``files`` under ``root``; the format follows the suffix, the cell colour the folder name."""
    out = []
    for i, rel in enumerate(files):
        label = Path(rel).parent.name or Path(rel).stem
        arr = cell_crop(size[0], label=label, seed=i, height=size[1])
        out.append(save_image(arr, root / rel))
    return out
