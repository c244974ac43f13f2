"""Shared pieces of the sweep-file schema.

Every section is a pydantic model that forbids unknown keys. A field may be
marked `fixed()` (or a whole section `FIXED`) when searching it makes no sense
(paths, resources, the search settings themselves); the loader refuses a
search domain on such a key.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SEARCHABLE = "searchable"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)


FIXED = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True, json_schema_extra={SEARCHABLE: False})


def fixed(default: Any = ..., **kwargs: Any) -> Any:
    """A field whose value cannot be a search domain."""
    extra = kwargs.pop("json_schema_extra", None) or {}
    return Field(default, json_schema_extra={**extra, SEARCHABLE: False}, **kwargs)


def describe(text: str, default: Any = ..., **kwargs: Any) -> Any:
    return Field(default, description=text, **kwargs)
