"""Split lists: text files that name the images of one split, one id a line.

Pascal VOC's ``ImageSets/Main/<split>.txt`` and a generic spec's ``splits: files`` are such
lists. :func:`read_split_list` reads one with the line of each id, so that every problem names
the file and the line; :func:`select_listed` keeps the items a list names and reports each id
that names none; :func:`unlisted_notes` gives the images that no list names.

What ``unihema data check`` makes of them (docs/adding_a_dataset.md, "Checking"):

* an id that names no image: a **problem** (``<list>:<line>: id 'x' names no image ...``); the
  split would silently lose a sample the list promises;
* an id listed twice in one list: a problem (its line and the first one);
* a list without any id: a problem (the split is empty);
* an image that no list names: a **note**; datasets hold images out on purpose, the check lists
  them so that an accidental omission is seen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from unihema.data.catalog import DataError, Problem
from unihema.data.formats._common import read_text

#: ``report(file, reason, line)``: :meth:`unihema.data.catalog.DatasetAdapter.report`
Report = Callable[[Union[str, Path], str, Optional[int]], None]


def read_split_list(path: Union[str, Path], report: Report) -> Dict[str, int]:
    """The ids of one split list, ``id -> 1-based line``, in file order.

    Blank lines and surrounding spaces (and Windows line ends) are ignored. A repeated id is
    reported with its line and the first one, and kept once; a list holding no id is reported.

    Raises:
        DataError: the file is missing (``split list <path> is missing``) or not UTF-8 text.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split list {path} is missing")
    ids: Dict[str, int] = {}
    for lineno, raw in enumerate(read_text(path).splitlines(), start=1):
        key = raw.strip()
        if not key:
            continue
        if key in ids:
            report(path, f"id '{key}' is listed twice (first at line {ids[key]})", lineno)
            continue
        ids[key] = lineno
    if not ids:
        report(path, "lists no image id: its split is empty", None)
    return ids


def select_listed(items: Sequence[Tuple[str, Any]], path: Union[str, Path], report: Report,
                  looked_in: str) -> List[Tuple[str, Any]]:
    """The ``(id, payload)`` items that the list at ``path`` names, in the items' order.

    An id matches an item by its whole id (a root-relative path without suffix) or by its last
    component (the file stem). Each listed id that matches no item is reported at its line,
    saying where images were looked for (``looked_in``, e.g. the spec's ``images`` glob).
    """
    ids = read_split_list(path, report)
    picked = [it for it in items if it[0] in ids or it[0].rsplit("/", 1)[-1] in ids]
    matched = {k for it in picked for k in (it[0], it[0].rsplit("/", 1)[-1])}
    for key, line in ids.items():
        if key not in matched:
            report(path, f"id '{key}' names no image (looked for {looked_in})", line)
    return picked


def unlisted_notes(images: Iterable[Tuple[str, Path]], lists: Sequence[Path],
                   listed: Iterable[str]) -> List[Problem]:
    """A note for each ``(id, image file)`` whose id (or stem) is in none of ``listed``, the ids
    of the split lists ``lists`` (named in the note)."""
    listed = set(listed)
    if len({p.parent for p in lists}) == 1:
        names = f"{', '.join(p.name for p in lists)} in {lists[0].parent}"
    else:
        names = ", ".join(str(p) for p in lists)
    return [Problem(str(path), f"image is in no split: '{key}' is not listed in {names}")
            for key, path in images
            if key not in listed and key.rsplit("/", 1)[-1] not in listed]


def spec_unlisted(root: Path, spec: Dict[str, Any]) -> List[Problem]:
    """For a generic spec (:mod:`unihema.data.generic`) with ``splits: files`` and an ``images``
    glob: a note for each image of the glob that no list names (none for other specs)."""
    files = (spec.get("splits") or {}).get("files")
    if not files or not spec.get("images"):
        return []
    lists = [root / str(f) for f in files.values()]
    listed = [k for f in lists if f.is_file() for k in read_split_list(f, lambda *a: None)]
    pattern = str(spec["images"]).replace("{split}", "*")
    found = [(p.relative_to(root).with_suffix("").as_posix(), p)
             for p in sorted(root.glob(pattern)) if p.is_file()]
    return unlisted_notes(found, lists, listed)
