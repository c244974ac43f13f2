"""Turn pydantic's validation errors into one line a user can act on.

`optimizer.lr: must be > 0, got -0.1`, `model.hed: unknown key, did you mean
'head'?`: the dotted path as written in the file, what is allowed, what was
given.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import ValidationError

from raysweep.config.domains import misspelt_domain
from raysweep.config.schema import _field, field_names, section_at
from raysweep.registry import suggest

_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "list": "a list",
    "dict": "a mapping",
    "model": "a mapping",
    "tuple": "a list",
}

_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def loc_to_path(loc: tuple, raw: Any) -> str:
    """Dotted path of a pydantic `loc` as written in the file. Steps that are not
    keys of `raw` are union member tags pydantic adds ('int', 'list[int]') and
    are dropped, except a missing key at the end."""
    parts: list[str] = []
    node = raw
    for step in loc:
        if isinstance(node, dict) and step in node:
            parts.append(str(step))
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            parts[-1:] = [f"{parts[-1]}[{step}]" if parts else f"[{step}]"]
            node = node[step]
        elif isinstance(node, dict) and isinstance(step, str) and not _is_union_tag(step):
            parts.append(step)
            node = None
    return ".".join(parts)


def _is_union_tag(step: str) -> bool:
    return step in _TYPE_WORDS or "[" in step or step.startswith("function-") or step in {"str", "float", "int", "bool"}


def _literal_options(path: str) -> list[str] | None:
    parent, _, key = path.rpartition(".")
    model = section_at(parent)
    f = _field(model, key) if model else None
    if f is None:
        return None
    found: list[str] = []

    def walk(ann):
        if typing.get_origin(ann) is typing.Literal:
            found.extend(str(a) for a in typing.get_args(ann))
        for arg in typing.get_args(ann):
            walk(arg)

    walk(f.annotation)
    return found or None


def describe_error(err: dict, path: str) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind.endswith(("_type", "_parsing")) or kind == "literal_error":
        mistake = misspelt_domain(value)  # a value refused because it is a domain with a typo
        if mistake:
            return mistake
    if kind == "extra_forbidden":
        parent = path.rpartition(".")[0]
        model = section_at(parent)
        options = field_names(model) if model else []
        key = path.rpartition(".")[2]
        return "unknown key" + (suggest(key, options) if options else "")
    if kind == "missing":
        return "required"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        return f"must be {_BOUNDS[kind]} {show(bound)}, got {show(value)}"
    if kind == "literal_error":
        options = _literal_options(path) or [ctx.get("expected", "")]
        return f"must be one of {', '.join(options)}, got {show(value)}" + (
            suggest(str(value), options).split(";")[0] if isinstance(value, str) and "did you mean" in suggest(str(value), options) else ""
        )
    if kind == "int_from_float":
        return f"must be an integer, got {show(value)}"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        word = _TYPE_WORDS.get(kind.rsplit("_", 1)[0], kind.rsplit("_", 1)[0])
        return f"must be {word}, got {show(value)}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}, got {show(value)}"
    if kind in ("too_short", "too_long"):
        return err["msg"].lower().replace("list should", "must") + f", got {show(value)}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return err["msg"]


def first_error(exc: ValidationError, raw: Any) -> tuple[str, str]:
    """(dotted path, message) of the error to show; the shallowest, first-listed one."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    path = loc_to_path(err["loc"], raw)
    message = describe_error(err, path)
    if err["type"] == "value_error":
        path, message = _blamed_field(path, message)
    if len(errors) > 1:
        others = {loc_to_path(e["loc"], raw) for e in errors[1:]} - {path}
        if others:
            message += f" (and {len(others)} more)"
    return path, message


def _blamed_field(path: str, message: str) -> tuple[str, str]:
    """A section's model validator names the field it blames as `key: ...`
    (`search: mode: needs one mode per metric`); move that key into the path."""
    key, sep, rest = message.partition(": ")
    model = section_at(path)
    if sep and model is not None and _field(model, key) is not None:
        return (f"{path}.{key}" if path else key), rest
    return path, message
