"""The `pixel_table` source: one flattened image per row.

Formats, by the suffix of `data.path`:

- `.csv` (or `.tsv`, `.txt`), `.parquet`: the labels in `data.label_col`, group ids
  in `data.group_col` when set, and every other column a pixel, in column order. A
  CSV file may have no header (columns are then '0', '1', ...) and any separator
  (`data.sep`, else detected); a row index column, as pandas' `to_csv()` writes
  first, is dropped (`trainables.data.layout`). The labels may be a file of their
  own, `data.labels_path` (X_train.csv and y_train.csv), with or without a header.
  Read in batches with pyarrow, so a 40k x 12210 table (the IJCNN data) never
  sits in memory as float64. Every trial parses the table again: 1000 such
  rows take about 1.7 s from CSV, 0.4 s from Parquet and 0.06 s from .npz, so
  convert a large CSV once.
- `.npz`: arrays `x` (N, P) flattened or (N, H, W[, C]) already shaped, and
  `y`: (N,) class indices or names, or (N, C) multi-hot; optionally `groups`
  (N,). Write one with `np.savez(path, x=x, y=y)`.

A flat row is shaped by `data.reshape` in C order: [H, W] for one channel,
[H, W, C] otherwise (12210 -> [74, 55, 3]). Float pixels in [0, 1] are scaled
to 0..255 (`to_uint8`). Rows are named `line N` in a CSV file (the header is
line 1) and `row N` (from 0, as pandas shows them) otherwise.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np

from raysweep.config.sections.data import DataConfig
from raysweep.errors import DataError
from trainables.data.files import existing_file
from trainables.data.labels import encode_labels, multi_hot_classes
from trainables.data.layout import column_names, field_separator, has_header, index_columns, shown
from trainables.data.registry import register_source
from trainables.data.samples import ArrayStore, Samples, full_scale, to_uint8

BATCH_ROWS = 1024  # Parquet rows per batch
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
CSV_BLOCK = 32 << 20  # CSV bytes per batch: pyarrow's default 1 MiB holds ~8 rows of 12210 pixels, and per-batch overhead then dominates


def row_shape(cfg: DataConfig, pixels: int, source: Path) -> tuple[int, int, int]:
    """(H, W, C) of a flat row of `pixels` values."""
    if cfg.reshape is None:
        side = math.isqrt(pixels)
        hint = f", e.g. [{side}, {side}]" if side * side == pixels else ""
        raise DataError(f"required to shape the {pixels}-pixel rows of {source}{hint}", path="data.reshape")
    size = math.prod(cfg.reshape)
    if size != pixels:
        hint = "; if the first column is a row index (pandas' to_csv()), set data.index_col: 0" if pixels == size + 1 else ""
        raise DataError(f"{cfg.reshape} holds {size} values but the rows of {source} have {pixels} pixels{hint}", path="data.reshape")
    h, w, *c = cfg.reshape
    return h, w, c[0] if c else 1


def _check_finite(x: np.ndarray, start: int, name) -> None:
    if np.issubdtype(x.dtype, np.floating):
        bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
        if bad.size:
            raise DataError("has a missing or non-finite pixel value", source=name(start + int(bad[0]))[0], path=name(start + int(bad[0]))[1])


def _batches(cfg: DataConfig, path: Path, keep: tuple[str, ...]) -> tuple[list[str], Iterator]:
    """(column names, record batches) of a CSV or Parquet table, its row index columns
    left out; columns in `keep` are read as text, the others as pixels. A CSV file's
    separator is `data.sep` or detected; without a header its columns are named by
    position ('0', '1', ...)."""
    import pyarrow as pa

    if path.suffix.lower() in CSV_SUFFIXES:
        import pyarrow.csv as pcsv

        sep = field_separator(path, cfg.sep)
        names, header = column_names(path, sep)
        index = set(index_columns(names, cfg.index_col, path))
        columns = [c for c in names if c not in index]
        types = {c: (pa.string() if c in keep else pa.float32()) for c in columns}
        options = pcsv.ConvertOptions(column_types=types, include_columns=columns)
        read = pcsv.ReadOptions(column_names=names, skip_rows=1 if header else 0, block_size=CSV_BLOCK)
        return columns, pcsv.open_csv(path, read_options=read, parse_options=pcsv.ParseOptions(delimiter=sep), convert_options=options)
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path)
    names = table.schema_arrow.names
    pandas_index = [c for c in (table.schema_arrow.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)]
    index = {*index_columns(names, cfg.index_col, path), *pandas_index}
    columns = [c for c in names if c not in index]
    return columns, table.iter_batches(batch_size=BATCH_ROWS, columns=columns)


def _read_rows(cfg: DataConfig, path: Path, name) -> tuple[np.ndarray, list[str], Optional[np.ndarray], float]:
    """(images, label cells, groups, the stored full-intensity value) of a CSV or Parquet pixel
    table; without a label column (`data.labels_path` holds the labels) the cells are empty."""
    own_labels = cfg.labels_path is None
    keep = tuple(c for c in (cfg.label_col if own_labels else None, cfg.group_col) if c)
    try:
        columns, batches = _batches(cfg, path, keep)
        for key in ("label_col", "group_col"):
            col = getattr(cfg, key)
            if col in keep and col not in columns:
                raise DataError(f"no column {col!r} (columns: {shown(columns)})", source=str(path), path=f"data.{key}")
        pixel_cols = [c for c in columns if c not in keep]  # `keep` is a tuple of one or two
        shape = row_shape(cfg, len(pixel_cols), path)
        images, cells, groups, start, pixel_max = [], [], [], 0, 0.0
        for batch in batches:
            x = np.column_stack([batch.column(c).to_numpy(zero_copy_only=False) for c in pixel_cols])
            _check_finite(x, start, name)
            images.append(to_uint8(x).reshape(-1, *shape))
            pixel_max = max(pixel_max, full_scale(x))
            if own_labels:
                cells += ["" if v is None else str(v) for v in batch.column(cfg.label_col).to_pylist()]
            if cfg.group_col:
                groups += [str(v) for v in batch.column(cfg.group_col).to_pylist()]
            start += batch.num_rows
    except (OSError, ValueError) as e:  # pyarrow's ArrowInvalid is a ValueError: a cell that is not a number
        raise DataError(f"not a readable pixel table: {str(e).strip()}", source=str(path)) from None
    if not images:
        raise DataError("has no rows", source=str(path))
    return np.concatenate(images), cells, np.array(groups) if cfg.group_col else None, pixel_max


def _read_npz(cfg: DataConfig, path: Path, name) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray], float]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise DataError(f"not a readable .npz file: {e}", source=str(path)) from None
    for key in ("x", "y") if cfg.labels_path is None else ("x",):
        if key not in arrays:
            raise DataError(f"has no array {key!r} (arrays: {', '.join(arrays) or 'none'}); write it with np.savez(path, x=images, y=labels)", source=str(path))
    x, y = arrays["x"], arrays.get("y", np.zeros(len(arrays["x"])))  # the labels' own file replaces y
    if len(x) != len(y):
        raise DataError(f"x has {len(x)} rows but y has {len(y)}", source=str(path))
    if x.ndim == 2 or cfg.reshape is not None:
        x = x.reshape(len(x), -1)
        shape = row_shape(cfg, x.shape[1], path)
        _check_finite(x, 0, name)
        x = x.reshape(-1, *shape)
    elif x.ndim == 3:
        x = x[..., None]
    return to_uint8(x), y, arrays.get("groups"), full_scale(x)


def _label_file_header(cfg: DataConfig, rows: list[list[str]]) -> bool:
    """Whether a labels file starts with a header: it names data.label_col, starts with
    pandas' empty index cell, or is words over numbers (a file of class names has none)."""
    first = rows[0] if rows else []
    if cfg.label_col in first or (first and first[0] == ""):
        return True
    return len(rows) > 1 and has_header(first) and not has_header(rows[1])


def _read_label_file(cfg: DataConfig, count: int, data_path: Path) -> tuple[list[str], Callable]:
    """(label cells, row namer) from `data.labels_path`, one row per row of `data.path`."""
    import csv

    import pandas as pd

    path = existing_file(cfg.labels_path, "labels_path")
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(path).astype(str)  # pandas puts a stored index back as the index
        header, first = True, 0
    else:
        sep = field_separator(path, cfg.sep)
        with open(path, newline="", encoding="utf-8-sig") as f:
            head = [[c.strip() for c in r] for _, r in zip(range(2), csv.reader(f, delimiter=sep))]
        header = _label_file_header(cfg, head)
        try:
            frame = pd.read_csv(path, sep=sep, header=0 if header else None, dtype=str, keep_default_na=False, skipinitialspace=True)
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
            raise DataError(f"not a readable CSV file: {str(e).strip()}", source=str(path)) from None
        frame.columns = [str(c).strip() for c in frame.columns]
        first = 2 if header else 1
    frame = frame.drop(columns=index_columns(list(frame.columns), cfg.index_col, path))
    if not header and cfg.index_col is None and frame.shape[1] == 2 and frame.iloc[:, 0].tolist() == [str(i) for i in range(len(frame))]:
        frame = frame.iloc[:, 1:]  # to_csv(header=False) of a Series: its index, then the labels
    if cfg.label_col in frame.columns:
        cells = frame[cfg.label_col].tolist()
    elif frame.shape[1] == 1:
        cells = frame.iloc[:, 0].tolist()
    else:
        raise DataError(f"no column {cfg.label_col!r} (columns: {shown(list(frame.columns))})", source=str(path), path="data.label_col")
    if len(cells) != count:
        raise DataError(f"has {len(cells)} labels but {data_path} has {count} rows", source=str(path), path="data.labels_path")

    def name(i: int) -> tuple[str, str]:
        return str(path), f"line {i + first}" if first else f"row {i}"

    return [str(c) for c in cells], name


@register_source("pixel_table", requires=("path",))
def pixel_table(cfg: DataConfig) -> Samples:
    """Flattened pixel rows in a CSV, Parquet or .npz file at `data.path`, shaped by
    `data.reshape` (the IJCNN table: 12210 columns -> [74, 55, 3]); the labels in its
    `data.label_col`, or in a file of their own at `data.labels_path`."""
    path = existing_file(cfg.path, "path")
    suffix = path.suffix.lower()
    label, first = "row", 0
    if suffix in CSV_SUFFIXES:  # rows named by their line in the file, as an editor shows them
        label, first = "line", 2 if column_names(path, field_separator(path, cfg.sep))[1] else 1

    def name(i: int) -> tuple[str, str]:
        return str(path), f"{label} {i + first}"

    if suffix == ".npz":
        images, y, groups, pixel_max = _read_npz(cfg, path, name)
        if cfg.labels_path is not None:
            cells, where = _read_label_file(cfg, len(images), path)
            labels, classes, task = encode_labels(cells, sep=cfg.label_sep, declared_classes=cfg.classes, task=cfg.task, where=where)
        elif y.ndim == 2:
            if cfg.task not in ("auto", "multilabel"):
                raise DataError(f"y is multi-hot ({y.shape[1]} columns) but data.task is {cfg.task!r}", source=str(path), path="data.task")
            labels = y.astype(np.float32)
            classes = multi_hot_classes(labels, cfg.classes, str(path))
            task = "multilabel"
        else:
            labels, classes, task = encode_labels([str(v) for v in y], sep=cfg.label_sep, declared_classes=cfg.classes, task=cfg.task, where=name)
    elif suffix in (*CSV_SUFFIXES, ".parquet", ".pq"):
        images, cells, groups, pixel_max = _read_rows(cfg, path, name)
        where = name
        if cfg.labels_path is not None:
            cells, where = _read_label_file(cfg, len(images), path)
        labels, classes, task = encode_labels(cells, sep=cfg.label_sep, declared_classes=cfg.classes, task=cfg.task, where=where)
    else:
        raise DataError(f"unknown pixel table format {suffix!r}; use .csv, .parquet or .npz (arrays x and y)", source=str(path), path="data.path")
    return Samples(ArrayStore(images, f"{path}: {label}", first), labels, classes, task, groups=groups, in_chans=int(images.shape[3]), pixel_max=pixel_max)
