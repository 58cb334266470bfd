"""Small helpers shared across the package: atomic file writes, file digests, slugs, JSON.

This module is the bottom layer: it imports nothing from :mod:`unihema`, so any module may use
it.

Atomic writes. Every file the package writes for a reader (configs, results, checkpoint
weights, overlays, derived masks, synthetic data) goes through a temporary file in the same
folder that is renamed over the target with :func:`os.replace`. A reader therefore sees the
old file or the new one, never half of one, and an interrupted run leaves at most a hidden
``.<name>.<random>.tmp`` behind (removed when the write itself fails).

* :func:`atomic_write_bytes` / :func:`atomic_write_text`: the content is in memory.
* :func:`atomic_save`: a library writes the file itself (``PIL.Image.save``,
  ``safetensors.torch.save_model``); it is handed the temporary path.

``durable=True`` (the default) also ``fsync``\\ s the file before the rename, so the content
survives a power cut once the call returns; bulk writers of many small regenerable files
(synthetic data) pass ``durable=False``.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Union

PathLike = Union[str, Path]

#: bytes read at a time by :func:`sha256_file`
CHUNK = 1 << 20


# ----------------------------------------------------------------------------- atomic writes
def atomic_save(path: PathLike, save: Callable[[Path], Any], *, durable: bool = True) -> Path:
    """Create ``path`` atomically with ``save(tmp)``, which writes the whole file at ``tmp``.

    ``tmp`` is a fresh hidden file beside ``path`` (same folder, so the rename never crosses
    a file system); the parent folder is created when missing. Writers that infer the format
    from the file name must be told it (``img.save(tmp, format="PNG")``): ``tmp`` ends in
    ``.tmp``. The file gets the mode a plain ``open`` would give (``0666`` less the umask),
    not ``mkstemp``'s ``0600``. On any error the temporary file is removed and the error
    re-raised; ``path`` is then untouched.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; give the usual mode
        save(tmp)
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def atomic_write_bytes(path: PathLike, data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_save`); returns the path."""
    return atomic_save(path, lambda tmp: tmp.write_bytes(data), durable=durable)


def atomic_write_text(path: PathLike, text: str, *, durable: bool = True) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, like :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


# ----------------------------------------------------------------------------- digests
def sha256_file(path: PathLike) -> str:
    """Hex sha256 of a file's bytes, read in :data:`CHUNK` pieces (any size of file)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------- names
def slug(text: str) -> str:
    """``text`` as a file-name part: each run of characters other than letters, digits,
    ``_``, ``.`` and ``-`` becomes one ``_``, leading/trailing ``_`` are stripped; ``"x"``
    when nothing is left (``"bccd / detect"`` -> ``"bccd_detect"``)."""
    return re.sub(r"[^\w.\-]+", "_", text).strip("_") or "x"


# ----------------------------------------------------------------------------- JSON
def jsonable(value: Any, *, finite: bool = True) -> Any:
    """A copy of ``value`` that :func:`json.dumps` accepts.

    Mappings become dicts with ``str`` keys, lists and tuples lists, NumPy/torch arrays nested
    lists (``.tolist()``), NumPy/torch scalars Python numbers (``.item()``). With ``finite``
    (the default) NaN and infinities become ``None``, since strict JSON has neither; with
    ``finite=False`` they are kept (``json.dumps`` writes ``NaN``).
    """
    if isinstance(value, float):
        return None if finite and not math.isfinite(value) else value
    if isinstance(value, (str, bytes, int, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v, finite=finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, finite=finite) for v in value]
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) > 0 and hasattr(value, "tolist"):
        return jsonable(value.tolist(), finite=finite)
    if hasattr(value, "item"):
        return jsonable(value.item(), finite=finite)
    return value
