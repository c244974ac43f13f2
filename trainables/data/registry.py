"""The registry of data sources, kept apart from the sources themselves so that
the modules defining them (`sources.py`, `files.py`, `tables.py`, `vision.py`)
can all import it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from raysweep.config.sections.data import DataConfig
from raysweep.registry import Registry
from trainables.data.samples import Samples

Source = Callable[[DataConfig], Samples]


@dataclass(frozen=True)
class SourceInfo:
    """A registered data source: its `data.kind`, the function that loads it, and the `data`
    keys it cannot do without (checked before any data is read, `trainables.checks`)."""

    name: str
    load: Source
    requires: tuple[str, ...] = ()


SOURCES: Registry[SourceInfo] = Registry("data source")


def register_source(name: str, *, requires: tuple[str, ...] = ()):
    """Register a source; `requires` names the `data` keys it cannot do without."""

    def deco(fn: Source) -> Source:
        SOURCES.register(name)(SourceInfo(name, fn, tuple(requires)))
        return fn

    return deco


def required_fields(source: SourceInfo) -> tuple[str, ...]:
    return source.requires
