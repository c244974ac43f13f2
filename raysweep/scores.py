"""What counts as a metric value, and which of several is best: one answer for the
searcher, the progress table, the report, the checkpoints kept and the trainer.

A score is a finite real number. A bool is not one (`True` is an int in Python, but a
metric that reports a flag, such as `diverged`, is no score), nor is NaN or infinity (a
diverged trial's objective) or a string.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Iterable, Optional, TypeVar

T = TypeVar("T")
MODES = ("max", "min")


def is_score(value: Any) -> bool:
    """A finite real number, not a bool (numpy's numbers included)."""
    # bool is a numbers.Real (an int); numpy.bool_ is not one
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def score(value: Any) -> Optional[float]:
    """`value` as a float if it is a score, else None."""
    return float(value) if is_score(value) else None


def better(a: float, b: Optional[float], mode: str) -> bool:
    """Whether score `a` beats `b` (None: nothing yet) under `mode` ("max" or "min")."""
    return b is None or (a > b if mode == "max" else a < b)


def best(items: Iterable[T], mode: str, key: Callable[[T], Any] = lambda x: x) -> Optional[T]:
    """The item whose `key` is the best score under `mode`; items whose key is no score are
    passed over; None if none has one. Ties keep the first."""
    pick = max if mode == "max" else min
    scored = [item for item in items if is_score(key(item))]
    return pick(scored, key=lambda item: float(key(item))) if scored else None


def rank_key(value: Any, mode: str) -> float:
    """A sort key that puts the best score first and non-scores last (ascending sort)."""
    if not is_score(value):
        return math.inf
    return -float(value) if mode == "max" else float(value)
