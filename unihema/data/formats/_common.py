"""Shared pieces of the format readers: the error constructor and small parsing helpers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Union

from unihema.data.catalog import DataError

PathLike = Union[str, Path]


def data_error(path: PathLike, reason: str, *, line: Optional[int] = None,
               field: Optional[str] = None) -> DataError:
    """A :class:`DataError` reading ``<file>:<line>: <field>: <reason>``."""
    where = f"{path}:{line}" if line is not None else str(path)
    if field:
        where += f": {field}"
    return DataError(f"{where}: {reason}")


def to_float(value: object, path: PathLike, *, line: Optional[int] = None,
             field: Optional[str] = None) -> float:
    """A finite float, or a :class:`DataError` naming the file, line/field and the bad value."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise data_error(path, f"expected a number, got {value!r}", line=line,
                         field=field) from None
    if not math.isfinite(out):
        raise data_error(path, f"expected a finite number, got {value!r}", line=line, field=field)
    return out


def to_int(value: object, path: PathLike, *, line: Optional[int] = None,
           field: Optional[str] = None) -> int:
    """An integer (``"3"`` or ``"3.0"``), or a :class:`DataError` naming the value."""
    if isinstance(value, bool):
        raise data_error(path, f"expected an integer, got {value!r}", line=line, field=field)
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        pass
    try:
        f = float(str(value).strip())
    except ValueError:
        f = float("nan")
    if not f.is_integer():
        raise data_error(path, f"expected an integer, got {value!r}", line=line, field=field)
    return int(f)


def read_text(path: PathLike, encoding: str = "utf-8-sig") -> str:
    """The text of a file; :class:`DataError` when missing, not a file or not decodable."""
    p = Path(path)
    if not p.is_file():
        raise data_error(p, "file not found" if not p.exists() else "not a regular file")
    try:
        return p.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise data_error(p, f"not {encoding} text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise data_error(p, f"cannot read ({exc.strerror or exc})") from None
