"""Named registries filled by decorators.

Losses, data sources, augmentation presets, heads, schedulers, search
algorithms and trial schedulers each live in one `Registry`. Asking for an
unknown name raises a `ConfigError` that suggests the closest names, so a
typo in a sweep file is caught with a useful message rather than a KeyError.
"""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from raysweep.errors import ConfigError

T = TypeVar("T")


def suggest(name: str, options) -> str:
    """' (did you mean 'x'?)' or '; allowed: a, b, c' for an unknown `name`."""
    options = sorted(str(o) for o in options)
    close = difflib.get_close_matches(str(name), options, n=3, cutoff=0.5)
    if close:
        return ", did you mean " + " or ".join(repr(c) for c in close) + "?"
    if len(options) <= 12:
        return "; allowed: " + ", ".join(options)
    return ""


class Registry(Generic[T]):
    """A name -> object table with a registering decorator."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            for key in (name, *aliases):
                if key in self._items:
                    raise ValueError(f"{self.kind} {key!r} is registered twice")
                self._items[key] = obj
            return obj

        return deco

    def get(self, name: str, *, path: str | None = None) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}{suggest(name, self._items)}", path=path
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> list[str]:
        return sorted(self._items)
