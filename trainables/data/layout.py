"""How a delimited text file is laid out: its separator, whether it has a header,
and which of its columns is a row index rather than data.

Files come as their tools write them: pandas' `to_csv()` puts its index first
under an empty header cell (read back as `Unnamed: 0`), and with int column
names its header is `,0,1,2,...`; `to_csv(header=False)` writes none;
Parquet keeps a non-default index as `__index_level_0__`; Kaggle's manifests
are commas, other exports tabs or semicolons.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Optional, Union

from raysweep.errors import DataError

FIELD_SEPARATORS = (",", "\t", ";", "|")
INDEX_NAMES = ("", "Unnamed: 0", "__index_level_0__")  # pandas' unnamed index, as written and as read back


def first_line(path: Path) -> str:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return f.readline()
    except UnicodeDecodeError as e:
        raise DataError(f"not a readable text file: {e}", source=str(path)) from None


def field_separator(path: Path, configured: Optional[str]) -> str:
    """`data.sep`, else the separator the first line uses most (a comma on a tie or none)."""
    if configured:
        return configured
    line = first_line(path)
    counts = {s: line.count(s) for s in FIELD_SEPARATORS}
    best = max(FIELD_SEPARATORS, key=lambda s: counts[s])  # max keeps the first of equals: the comma
    return best if counts[best] else ","


def first_row(path: Path, sep: str) -> list[str]:
    return [c.strip() for c in next(csv.reader([first_line(path)], delimiter=sep), [])]


def _number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def has_header(cells: list[str]) -> bool:
    """Whether a first row names columns: mostly words, pandas' empty index cell first, or
    numbers that are pandas' default column names 0, 1, ..., k-1 (`to_csv` of a bare
    array: three or more, or beside a name, since a headerless row of an index and a
    label may read '0,1').
    A data row is mostly numbers, whatever its label ('cat;0.1;0.5;...')."""
    if not cells or cells[0] == "":
        return True
    numbers = [c for c in cells if _number(c)]
    if len(numbers) * 2 < len(cells):
        return True
    named = len(numbers) >= 3 or len(numbers) < len(cells)  # 'label,0,1' names; '0,1' may be data
    return named and numbers == [str(i) for i in range(len(numbers))]


def column_names(path: Path, sep: str) -> tuple[list[str], bool]:
    """(names, header?): the header's names, or positions '0', '1', ... when there is none."""
    cells = first_row(path, sep)
    if has_header(cells):
        return cells, True
    return [str(i) for i in range(len(cells))], False


def index_columns(names: list[str], configured: Optional[Union[int, str]], source: Path) -> list[str]:
    """The columns that are a row index: `data.index_col` (a name, or a position from 0),
    else a leading unnamed column and Parquet's `__index_level_0__`."""
    if configured is not None:
        if isinstance(configured, int):
            if not 0 <= configured < len(names):
                raise DataError(f"is {configured} but {source} has {len(names)} columns (0 to {len(names) - 1})", path="data.index_col")
            return [names[configured]]
        if configured not in names:
            raise DataError(f"no column {configured!r} in {source} (columns: {shown(names)})", path="data.index_col")
        return [configured]
    found = [names[0]] if names and names[0] in INDEX_NAMES[:2] else []
    return found + [n for n in names if n == "__index_level_0__"]


def shown(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
