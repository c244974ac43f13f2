"""Tied grid axes: `search.cases`, given combinations of several keys.

    search:
      cases:
        - {model.name: efficientnet_b7,    train.batch_size: 24, train.accumulate: 3}
        - {model.name: seresnext101_32x4d, train.batch_size: 64, train.accumulate: 1}

Independent `grid` domains make the Cartesian product of their values; a list of
cases makes exactly its rows, and is itself one axis crossed with the other
grids. It becomes one search dimension at `search.cases` (a `Domain` of kind
`cases` whose values are the rows): a grid axis under `algorithm: grid` and
`optuna` (enqueued round-robin, like a `grid` domain), a categorical under
`random`. Optuna sees it as one categorical parameter whose choices are the
rows' labels (`name=efficientnet_b7, batch_size=24, accumulate=3`); Tune and
everything downstream see the rows' own keys.

The keys' plain values elsewhere in the file stay the defaults `raysweep train`
uses. Every row has the same keys, each a searchable key that no other domain
searches; every row's values are validated as the trial's config would be.
"""

from __future__ import annotations

from typing import Any, Callable

from raysweep.config.domains import CASES, CASES_PATH, Domain, looks_like_domain
from raysweep.errors import ConfigError
from raysweep.tables import short_names

Raise = Callable[[str, str], ConfigError]  # (key path, what is wrong) -> the error to raise


def row_label(row: dict[str, Any], short: dict[str, str]) -> str:
    return ", ".join(f"{short[k]}={v}" for k, v in row.items())


def labels(dom: Domain) -> list[str]:
    """One distinct string per row, for Optuna's categorical and for people."""
    short = short_names(list(dom.keys))
    out = [row_label(row, short) for row in dom.values]
    if len(set(out)) < len(out):  # values that print alike (1 and '1'): number them
        out = [f"{i}: {label}" for i, label in enumerate(out)]
    return out


def parse_cases(rows: Any, space: dict[str, Domain], fail: Raise, *, searchable, unknown, validate_row) -> Domain:
    """The `cases` domain of `search.cases`; `fail(path, message)` makes the error to raise.
    `validate_row(path, row)` validates the defaults with one row set, raising for a bad value;
    the schema's `searchable(key)` judges the keys, `unknown(key)` says what is wrong with one
    that does not exist (None where it does)."""
    if not isinstance(rows, list) or not rows:
        raise fail(CASES_PATH, f"must be a non-empty list of mappings of dotted keys to values, got {rows!r}")
    keys: tuple[str, ...] = ()
    seen: list[dict] = []
    for i, row in enumerate(rows):
        where = f"{CASES_PATH}[{i}]"
        if not isinstance(row, dict) or not row:
            raise fail(where, f"must be a mapping of dotted keys to values, e.g. {{model.name: resnet18, train.batch_size: 64}}, got {row!r}")
        if i == 0:
            keys = tuple(str(k) for k in row)
            _check_keys(keys, space, fail, searchable=searchable, unknown=unknown)
        elif set(row) != set(keys):
            raise fail(where, f"has keys {', '.join(map(str, row))} but {CASES_PATH}[0] has {', '.join(keys)}; every case sets the same keys")
        for key, value in row.items():
            if looks_like_domain(value):
                raise fail(f"{where}.{key}", "a case holds plain values, not a search domain")
        ordered = {k: row[k] for k in keys}
        if ordered in seen:
            raise fail(where, f"repeats {CASES_PATH}[{seen.index(ordered)}]")
        seen.append(ordered)
        validate_row(where, ordered)
    return Domain(CASES, values=tuple(seen), keys=keys)


def _check_keys(keys: tuple[str, ...], space: dict[str, Domain], fail: Raise, *, searchable, unknown) -> None:
    for key in keys:
        where = f"{CASES_PATH}[0].{key}"
        problem = unknown(key)
        if problem:
            raise fail(where, f"{problem} (a case's keys are dotted paths such as model.name or train.batch_size)")
        if not searchable(key):
            raise fail(where, "cannot be searched, so a case cannot set it")
        if key in space:
            raise fail(where, f"is searched by its own {space[key].kind} domain too; give it one value there, or leave it out of the cases")

