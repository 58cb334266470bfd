"""CSV tables (label and attribute columns, relative paths)."""

from __future__ import annotations

import csv
import io
from typing import Dict, List, Sequence

from unihema.data.formats._common import PathLike, data_error, read_text


def read_csv_table(path: PathLike, required: Sequence[str] = (), *, delimiter: str = ",",
                   encoding: str = "utf-8-sig") -> List[Dict[str, object]]:
    """Rows of a CSV file with a header line, as dicts.

    Header names and values are stripped of surrounding whitespace; a UTF-8 byte-order mark is
    ignored; blank lines are skipped. Each row gets ``_line``, its 1-based line number in the
    file, for messages.

    Raises:
        DataError: missing or undecodable file; no header; a required column missing (the
            message lists the columns found); a duplicate column name; a row with more or fewer
            fields than the header (file and line named).
    """
    text = read_text(path, encoding=encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise data_error(path, "empty file, expected a header line") from None
    except csv.Error as exc:
        raise data_error(path, f"malformed CSV ({exc})", line=1) from None
    header = [h.strip() for h in header]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise data_error(path, f"duplicate column(s) {dup} in the header", line=1)
    missing = [c for c in required if c not in header]
    if missing:
        raise data_error(path, f"missing column(s) {missing}; columns found: {header}", line=1)
    rows: List[Dict[str, object]] = []
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise data_error(path, f"malformed CSV ({exc})", line=reader.line_num) from None
        line = reader.line_num
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise data_error(path, f"expected {len(header)} fields ({', '.join(header)}), got "
                                   f"{len(values)}", line=line)
        row: Dict[str, object] = {h: v.strip() for h, v in zip(header, values)}
        row["_line"] = line
        rows.append(row)
    return rows
