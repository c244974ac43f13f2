"""Plain-text tables for the terminal (the live progress table, `raysweep report`).

`fit_table` keeps a table within a width (100 columns by default): long headers of
parameter columns are cut first, then the columns the caller names are left out (it is
told which), and a line that still does not fit is cut. `short_names` turns dotted parameter names
into the shortest suffix that stays unique (`optimizer.lr` -> `lr`).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

WIDTH = 100
GAP = "  "
ELLIPSIS = "…"
MIN_CELL = 5  # a narrowed column keeps this many characters, the last one an ellipsis


def fmt(value: Any, digits: int = 4) -> str:
    """A cell: floats to `digits` significant digits, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}g}"
    return str(value)


def clip(text: str, width: int) -> str:
    """`text` cut to `width` characters, an ellipsis marking the cut."""
    return text if len(text) <= width else text[: max(0, width - 1)] + ELLIPSIS


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in header], *[[fmt(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(GAP.join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def short_names(names: Sequence[str]) -> dict[str, str]:
    """Each dotted name's shortest suffix (by dotted parts) that no other name ends with:
    `optimizer.lr` -> `lr`, but `loss.name` and `optimizer.name` stay whole."""
    out = {}
    for name in names:
        parts = name.split(".")
        for n in range(1, len(parts) + 1):
            suffix = ".".join(parts[-n:])
            if not any(other != name and (other == suffix or other.endswith("." + suffix)) for other in names):
                break
        out[name] = suffix
    return out


def _width(widths: Sequence[int]) -> int:
    return sum(widths) + len(GAP) * (len(widths) - 1)


def fit_table(header: Sequence[str], rows: Sequence[Sequence[str]], width: int = WIDTH, shrinkable: Sequence[int] = (), drop: Sequence[int] = ()) -> tuple[str, list[int]]:
    """(the table as text, the columns left out). Cells are strings already. Too wide, the
    `shrinkable` columns' headers are cut, the widest first, down to their values' width (a
    number is never cut); then the columns in `drop` are left out, in that order. A line
    still wider than `width` is cut."""
    cells = [list(map(str, header)), *[list(map(str, r)) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    floors = {i: max(MIN_CELL, *(len(r[i]) for r in cells[1:])) if rows else MIN_CELL for i in shrinkable}
    keep = list(range(len(header)))
    while _width([widths[i] for i in keep]) > width:
        narrowable = [i for i in shrinkable if i in keep and widths[i] > floors[i]]
        if narrowable:
            widths[max(narrowable, key=lambda i: widths[i] - floors[i])] -= 1
            continue
        left = [i for i in drop if i in keep]
        if not left:
            break
        keep.remove(left[0])
    lines = [GAP.join(clip(r[i], widths[i]).ljust(widths[i]) for i in keep).rstrip() for r in cells]
    return "\n".join(clip(line, width) for line in lines), [i for i in range(len(header)) if i not in keep]
