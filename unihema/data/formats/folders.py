"""Folder-per-class image sets: ``<root>/<class name>/[<subfolders>/]<image>``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from unihema.data.formats._common import PathLike, data_error

#: Image file suffixes recognised by default (compared case-insensitively).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def scan_class_folders(root: PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS, *,
                       skipped: Optional[List[Path]] = None) -> List[Tuple[Path, str]]:
    """Images under each class folder of ``root``, as ``(path, class folder name)``.

    Every immediate subfolder of ``root`` is a class; images are found at any depth below it
    (``bone_marrow_cell_dataset/BLA/0001-1000/*.jpg``). Extensions match case-insensitively
    (``.JPG``). Hidden files and folders (names starting with ``.``) are skipped. The result is
    sorted by class, then path, so it does not depend on the file system's order.

    Args:
        skipped: when given, every other file found (not an image, or directly in ``root``
            rather than in a class folder) is appended to it, so the caller can report them.

    Raises:
        DataError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise data_error(root, "class-folder root is not a folder")
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    out: List[Tuple[Path, str]] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or _hidden(path, root):
            continue
        rel = path.relative_to(root)
        if len(rel.parts) < 2 or path.suffix.lower() not in exts:
            if skipped is not None:
                skipped.append(path)
            continue
        out.append((path, rel.parts[0]))
    out.sort(key=lambda item: (item[1], str(item[0])))
    return out
