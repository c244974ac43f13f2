"""Turn label cells of a manifest or table into class indices or multi-hot rows.

A cell holds one class name, or for multi-label data several separated by
`data.label_sep` (`"8 5 0"` in Kaggle's HPA 2018 manifest, `"8|5|0"` in its
2021 one; `auto` finds which the cells use). The classes are
`data.classes` when declared (a label outside them is an error naming the
row), else the sorted union of the labels found: numerically when every name
is an integer, so that "10" comes after "9".
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from raysweep.errors import DataError
from trainables.data.samples import infer_task

Where = Callable[[int], tuple[str, str]]  # row index -> (source, row) for error messages

SEPARATORS = ("|", ";", ",", " ")  # what `label_sep: auto` tries, most telling first


def detect_sep(cells: Sequence, declared_classes: Optional[list[str]]) -> str:
    """The separator the cells use: with declared classes, the first that splits every
    cell into classes; else the first found in any cell (a space when none is)."""
    texts = [str(c).strip() for c in cells]
    found = [s for s in SEPARATORS if any(s in t for t in texts)]
    if declared_classes:
        known = set(declared_classes)
        fits = [s for s in found if all(tok.strip() in known for t in texts for tok in t.split(s) if tok.strip())]
        if fits:
            return fits[0]
    return found[0] if found else " "


def _sep_hint(label: str, sep: str, known: set, task: str) -> str:
    """A hint when `label` is not a class but is classes joined by another separator."""
    for other in SEPARATORS:
        parts = [t.strip() for t in label.split(other) if t.strip()]
        single = task in ("binary", "multiclass")  # cells were kept whole, whatever the separator
        if (other != sep or single) and len(parts) > 1 and all(p in known for p in parts):
            also = "" if task == "multilabel" else " and data.task: multilabel"
            return f"; split on {other!r} it is classes {', '.join(parts)}: set data.label_sep: {other!r}{also}"
    return ""


def natural_sorted(names) -> list[str]:
    names = sorted(set(names))
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return names


def split_cells(cells: Sequence, sep: str, task: str, where: Where) -> list[list[str]]:
    """Each cell's labels. Declared single-label tasks keep the cell whole, so a
    class name may contain the separator ('golden retriever')."""
    if task in ("binary", "multiclass"):
        rows = [[str(c).strip()] if str(c).strip() else [] for c in cells]
    else:
        rows = [[t.strip() for t in str(c).split(sep) if t.strip()] for c in cells]
    if task != "multilabel" and not any(len(r) > 1 for r in rows):
        for i, r in enumerate(rows):
            if not r:  # an empty cell is only an all-negative row in multi-label data
                source, row = where(i)
                raise DataError("has no label", source=source, path=row)
    return rows


def encode_labels(
    cells: Sequence, *, sep: str, declared_classes: Optional[list[str]], task: str, where: Where
) -> tuple[np.ndarray, list[str], str]:
    """(labels, classes, task): int64 indices (N,) or float32 multi-hot (N, C)."""
    from sklearn.preprocessing import MultiLabelBinarizer

    if sep == "auto":
        sep = detect_sep(cells, declared_classes)
    rows = split_cells(cells, sep, task, where)
    classes = list(declared_classes) if declared_classes else natural_sorted(t for r in rows for t in r)
    known = set(classes)
    for i, r in enumerate(rows):
        for label in r:
            if label not in known:
                source, row = where(i)
                hint = _sep_hint(label, sep, known, task)
                raise DataError(f"label {label!r} is not in data.classes ({', '.join(classes)}){hint}", source=source, path=row)
    if task == "multilabel" or any(len(r) != 1 for r in rows):
        labels = MultiLabelBinarizer(classes=classes).fit_transform(rows).astype(np.float32)
    else:
        index = {c: k for k, c in enumerate(classes)}
        labels = np.array([index[r[0]] for r in rows], dtype=np.int64)
    return labels, classes, infer_task(task, labels, len(classes))


def multi_hot_classes(labels: np.ndarray, declared: Optional[list[str]], source: str) -> list[str]:
    """Class names for a stored (N, C) multi-hot array."""
    if declared is None:
        return [str(c) for c in range(labels.shape[1])]
    if len(declared) != labels.shape[1]:
        raise DataError(f"has {labels.shape[1]} label columns but data.classes names {len(declared)}", source=source, path="y")
    return list(declared)
