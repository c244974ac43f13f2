"""Search domains: the values a sweep-file leaf may range over.

Any searchable leaf may be written as a one-key mapping instead of a value:

    {choice: [a, b, c]}        one of the values (a categorical dimension)
    {grid: [a, b, c]}          every value (an axis of the Cartesian product)
    {uniform: [lo, hi]}        a float in [lo, hi]
    {loguniform: [lo, hi]}     a float in [lo, hi], uniform in log space
    {int: [lo, hi]}            an integer in [lo, hi], both ends included

each with an optional `default` (the value `raysweep train` uses). This module
parses those mappings and pulls them out of a raw config, leaving the default
in their place, so that the schema only ever validates concrete values.

One more kind is not written at a leaf: `search.cases` (`raysweep.config.cases`)
ties several keys into one axis; its `Domain` (kind `cases`) holds the rows,
each a mapping of dotted keys to values, and `assignments` spreads one over them.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any

from raysweep.errors import ConfigError

KINDS = ("choice", "grid", "uniform", "loguniform", "int")
_OPTIONS = {"default"}
CASES = "cases"  # the kind of `search.cases`: rows of several keys' values
CASES_PATH = "search.cases"


@dataclass(frozen=True)
class Domain:
    kind: str
    values: tuple = ()  # choice / grid
    low: float | int | None = None  # ranges
    high: float | int | None = None
    default: Any = field(default=None)
    has_default: bool = False
    keys: tuple[str, ...] = ()  # cases: the dotted keys every row sets

    @property
    def is_range(self) -> bool:
        return self.kind in ("uniform", "loguniform", "int")

    @property
    def is_finite(self) -> bool:
        return not self.is_range

    def default_value(self) -> Any:
        """`default`, else the first value, else the (geometric) middle of the range."""
        if self.has_default:
            return self.default
        if self.kind in ("choice", "grid", CASES):
            return self.values[0]
        if self.kind == "loguniform":
            return math.sqrt(self.low * self.high)
        if self.kind == "int":
            return int(round((self.low + self.high) / 2))
        return (self.low + self.high) / 2

    def candidates(self) -> list[tuple[str, Any]]:
        """(label, value) pairs that stand for the domain when checking values."""
        if self.kind in ("choice", "grid"):
            return [(f"{self.kind}[{i}]", v) for i, v in enumerate(self.values)]
        if self.kind == CASES:
            return [(f"{CASES_PATH}[{i}]", v) for i, v in enumerate(self.values)]
        return [(f"{self.kind}[0]", self.low), (f"{self.kind}[1]", self.high)]

    def contains(self, value: Any) -> bool:
        if self.kind in ("choice", "grid", CASES):
            return value in self.values
        return self.low <= value <= self.high

    def to_yaml(self) -> dict | list:
        if self.kind == CASES:
            return [dict(row) for row in self.values]
        body = list(self.values) if self.is_finite else [self.low, self.high]
        out = {self.kind: body}
        if self.has_default:
            out["default"] = self.default
        return out


def assignments(path: str, dom: Domain, value: Any) -> dict[str, Any]:
    """The dotted keys a domain's value sets: its own path, or each key of a case."""
    return dict(value) if dom.kind == CASES else {path: value}


def searched_keys(space: dict[str, Domain]) -> list[str]:
    """The config keys a search space varies, a case's keys in place of `search.cases`."""
    return [key for path, dom in space.items() for key in (dom.keys if dom.kind == CASES else (path,))]


def looks_like_domain(value: Any) -> bool:
    return isinstance(value, dict) and any(k in KINDS for k in value) and set(value) <= set(KINDS) | _OPTIONS


def misspelt_domain(value: Any) -> str | None:
    """What is wrong with a mapping given where a value belongs, when it reads as a domain
    with a typo (`{logunifrom: [...]}`, `{loguniform: [...], defualt: ...}`); else None.
    Asked only of a mapping the schema refused, so a key that takes mappings is never misread."""
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        return None
    unknown = [k for k in value if k not in KINDS and k not in _OPTIONS]
    if not unknown:
        return None
    if any(k in KINDS for k in value):
        return f"unknown domain option {unknown[0]!r}{_did_you_mean(unknown[0], _OPTIONS)}; allowed: {', '.join(sorted(_OPTIONS))}"
    close = _did_you_mean(unknown[0], KINDS)
    if len(unknown) > 1 or not (close or isinstance(value[unknown[0]], list)):
        return None  # `{foo: 1}` is no attempt at a domain: the type error says more
    return f"unknown domain {unknown[0]!r}{close}; allowed: {', '.join(KINDS)}"


def _did_you_mean(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_domain(raw: dict, path: str) -> Domain:
    kinds = [k for k in raw if k in KINDS]
    if len(kinds) != 1:
        raise ConfigError(f"a search domain takes exactly one of {', '.join(KINDS)}, got {', '.join(kinds)}", path=path)
    kind = kinds[0]
    body = raw[kind]
    has_default = "default" in raw
    default = raw.get("default")
    if kind in ("choice", "grid"):
        if not isinstance(body, list):
            raise ConfigError(f"{kind} must be a list of values, got {body!r}", path=path)
        if not body:
            raise ConfigError(f"{kind} must not be empty", path=path)
        dom = Domain(kind, values=tuple(body), default=default, has_default=has_default)
    else:
        if not (isinstance(body, list) and len(body) == 2):
            raise ConfigError(f"{kind} must be [low, high], got {body!r}", path=path)
        low, high = body
        numeric = (int,) if kind == "int" else (int, float)
        for end in (low, high):
            if isinstance(end, bool) or not isinstance(end, numeric):
                what = "integers" if kind == "int" else "numbers"
                raise ConfigError(f"{kind} bounds must be {what}, got {body!r}", path=path)
        if not low < high:
            raise ConfigError(f"{kind} needs low < high, got [{low}, {high}]", path=path)
        if kind == "loguniform" and low <= 0:
            raise ConfigError(f"loguniform needs low > 0, got {low}", path=path)
        dom = Domain(kind, low=low, high=high, default=default, has_default=has_default)
    if has_default and not dom.contains(default):
        raise ConfigError(f"default {default!r} is not in the {kind} domain {dom.to_yaml()[kind]}", path=path)
    return dom


def extract_domains(raw: Any, prefix: str = "") -> tuple[Any, dict[str, Domain]]:
    """Return (raw with every domain replaced by its default, {dotted path: Domain})."""
    found: dict[str, Domain] = {}

    def walk(node: Any, path: str) -> Any:
        if looks_like_domain(node):
            dom = parse_domain(node, path)
            found[path] = dom
            return dom.default_value()
        if isinstance(node, dict):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            for i, item in enumerate(node):
                if looks_like_domain(item):
                    raise ConfigError("a search domain must be the whole value of a key, not a list item", path=f"{path}[{i}]")
            return node
        return node

    return walk(raw, prefix), found
