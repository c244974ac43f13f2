"""The registry of data sources, kept apart from the sources themselves so that
the modules defining them (`sources.py`, `files.py`, `tables.py`, `vision.py`)
can all import it without importing each other."""

from __future__ import annotations

from typing import Callable

from raysweep.config.sections.data import DataConfig
from raysweep.registry import Registry
from trainables.data.samples import Samples

Source = Callable[[DataConfig], Samples]
SOURCES: Registry[Source] = Registry("data source")


def register_source(name: str, *, requires: tuple[str, ...] = ()):
    """Register a source; `requires` names the `data` keys it cannot do without."""

    def deco(fn: Source) -> Source:
        fn.requires = requires  # type: ignore[attr-defined]
        return SOURCES.register(name)(fn)

    return deco


def required_fields(source: Source) -> tuple[str, ...]:
    return getattr(source, "requires", ())
