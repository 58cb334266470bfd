"""Plain-text and Markdown tables for the console and for reports."""

from __future__ import annotations

from typing import Sequence


def plain_table(rows: Sequence[Sequence[object]], right_align_numbers: bool = True) -> str:
    """Rows (the first is the header) as aligned columns with a dashed rule under the header.

    Cells that parse as numbers are right-aligned when ``right_align_numbers``.
    """
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]

    def fmt(c: str, w: int) -> str:
        return c.rjust(w) if right_align_numbers and _is_number(c) else c.ljust(w)

    lines = ["  ".join(fmt(c, w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[Sequence[object]]) -> str:
    """Rows (the first is the header) as a GitHub Markdown table."""
    head, *body = [[str(c) for c in r] for r in rows]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
