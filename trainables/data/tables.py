"""The `pixel_table` source: one flattened image per row.

Formats, by the suffix of `data.path`:

- `.csv`, `.parquet`: a header; the labels in `data.label_col`, group ids in
  `data.group_col` when set, and every other column a pixel, in column order.
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
from typing import Iterator, Optional

import numpy as np

from raysweep.config.sections.data import DataConfig
from raysweep.errors import DataError
from trainables.data.files import existing_file
from trainables.data.labels import encode_labels, multi_hot_classes
from trainables.data.registry import register_source
from trainables.data.samples import ArrayStore, Samples, full_scale, to_uint8

BATCH_ROWS = 1024  # Parquet rows per batch
CSV_BLOCK = 32 << 20  # CSV bytes per batch: pyarrow's default 1 MiB holds ~8 rows of 12210 pixels, and per-batch overhead then dominates


def row_shape(cfg: DataConfig, pixels: int, source: Path) -> tuple[int, int, int]:
    """(H, W, C) of a flat row of `pixels` values."""
    if cfg.reshape is None:
        side = math.isqrt(pixels)
        hint = f", e.g. [{side}, {side}]" if side * side == pixels else ""
        raise DataError(f"required to shape the {pixels}-pixel rows of {source}{hint}", path="data.reshape")
    size = math.prod(cfg.reshape)
    if size != pixels:
        raise DataError(f"{cfg.reshape} holds {size} values but the rows of {source} have {pixels} pixels", path="data.reshape")
    h, w, *c = cfg.reshape
    return h, w, c[0] if c else 1


def _check_finite(x: np.ndarray, start: int, name) -> None:
    if np.issubdtype(x.dtype, np.floating):
        bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
        if bad.size:
            raise DataError("has a missing or non-finite pixel value", source=name(start + int(bad[0]))[0], path=name(start + int(bad[0]))[1])


def _batches(path: Path, keep: tuple[str, ...]) -> tuple[list[str], Iterator]:
    """(column names, batches of pyarrow record batches) of a CSV or Parquet table;
    columns in `keep` are read as text, the others as pixels."""
    import pyarrow as pa

    if path.suffix.lower() == ".csv":
        import csv

        import pyarrow.csv as pcsv

        with open(path, newline="") as f:
            header = [c.strip() for c in next(csv.reader(f), [])]
        types = {c: (pa.string() if c in keep else pa.float32()) for c in header}
        options = pcsv.ConvertOptions(column_types=types)
        return header, pcsv.open_csv(path, read_options=pcsv.ReadOptions(column_names=header, skip_rows=1, block_size=CSV_BLOCK), convert_options=options)
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path)
    return table.schema_arrow.names, table.iter_batches(batch_size=BATCH_ROWS)


def _read_rows(cfg: DataConfig, path: Path, name) -> tuple[np.ndarray, list[str], Optional[np.ndarray], float]:
    """(images, label cells, groups, the stored full-intensity value) of a CSV or Parquet pixel table."""
    keep = tuple(c for c in (cfg.label_col, cfg.group_col) if c)
    try:
        columns, batches = _batches(path, keep)
        for key in ("label_col", "group_col"):
            col = getattr(cfg, key)
            if col and col not in columns:
                raise DataError(f"no column {col!r} (columns: {', '.join(columns[:8])}{', ...' if len(columns) > 8 else ''})", source=str(path), path=f"data.{key}")
        pixel_cols = [c for c in columns if c not in keep]
        shape = row_shape(cfg, len(pixel_cols), path)
        images, cells, groups, start, pixel_max = [], [], [], 0, 0.0
        for batch in batches:
            x = np.column_stack([batch.column(c).to_numpy(zero_copy_only=False) for c in pixel_cols])
            _check_finite(x, start, name)
            images.append(to_uint8(x).reshape(-1, *shape))
            pixel_max = max(pixel_max, full_scale(x))
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
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"has no array {key!r} (arrays: {', '.join(arrays) or 'none'}); write it with np.savez(path, x=images, y=labels)", source=str(path))
    x, y = arrays["x"], arrays["y"]
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


@register_source("pixel_table", requires=("path",))
def pixel_table(cfg: DataConfig) -> Samples:
    """Flattened pixel rows in a CSV, Parquet or .npz file at `data.path`, shaped by
    `data.reshape` (the IJCNN table: 12210 columns -> [74, 55, 3])."""
    path = existing_file(cfg.path, "path")
    suffix = path.suffix.lower()
    label, first = ("line", 2) if suffix == ".csv" else ("row", 0)

    def name(i: int) -> tuple[str, str]:
        return str(path), f"{label} {i + first}"

    if suffix == ".npz":
        images, y, groups, pixel_max = _read_npz(cfg, path, name)
        if y.ndim == 2:
            if cfg.task not in ("auto", "multilabel"):
                raise DataError(f"y is multi-hot ({y.shape[1]} columns) but data.task is {cfg.task!r}", source=str(path), path="data.task")
            labels = y.astype(np.float32)
            classes = multi_hot_classes(labels, cfg.classes, str(path))
            task = "multilabel"
        else:
            labels, classes, task = encode_labels([str(v) for v in y], sep=cfg.label_sep, declared_classes=cfg.classes, task=cfg.task, where=name)
    elif suffix in (".csv", ".parquet", ".pq"):
        images, cells, groups, pixel_max = _read_rows(cfg, path, name)
        labels, classes, task = encode_labels(cells, sep=cfg.label_sep, declared_classes=cfg.classes, task=cfg.task, where=name)
    else:
        raise DataError(f"unknown pixel table format {suffix!r}; use .csv, .parquet or .npz (arrays x and y)", source=str(path), path="data.path")
    return Samples(ArrayStore(images, f"{path}: {label}", first), labels, classes, task, groups=groups, in_chans=int(images.shape[3]), pixel_max=pixel_max)
