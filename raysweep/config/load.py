"""Read a sweep file, apply `--set` overrides, and validate it once.

    sweep = load_sweep("search_spaces/quickstart.yaml", ["train.epochs=3"])
    sweep.config            # SweepConfig with every domain at its default
    sweep.space             # {"optimizer.lr": Domain(...), ...}
    sweep.resolve(params)   # SweepConfig of one trial

Every mistake becomes a `ConfigError` naming the file (or `--set`), the key
path and what is allowed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError

from raysweep.config.domains import CASES_PATH, Domain, extract_domains
from raysweep.config.messages import first_error, show
from raysweep.config.schema import SweepConfig, field_names, is_searchable, key_exists, section_at, _field
from raysweep.errors import ConfigError, UserError
from raysweep.registry import suggest

SET_SOURCE = "--set"


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file: its concrete defaults and its search space."""

    source: str
    raw: dict  # the file after overrides, domains included
    config: SweepConfig
    space: dict[str, Domain]
    overridden: frozenset = field(default_factory=frozenset)

    @property
    def name(self) -> str:
        return self.config.name

    def defaults_raw(self) -> dict:
        return extract_domains(self.raw)[0]

    def resolve(self, params: dict[str, Any]) -> SweepConfig:
        """The concrete config of one trial: defaults with `params` (dotted paths) set."""
        raw = self.defaults_raw()
        for path, value in params.items():
            set_path(raw, path, value)
        return validate(raw, self.source, self.overridden)

    def blame(self, err: UserError) -> UserError:
        """`err` (from the data or the cluster, naming a key but no file) naming where that
        key was set: this file, or `--set`."""
        return err.with_source(_source_of(err.path or "", self.source, self.overridden))

    def config_hash(self) -> str:
        text = json.dumps(self.raw, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def read_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise ConfigError("no such file", source=str(path))
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = _yaml_problem(e)
        raise ConfigError(f"{where}not valid YAML: {problem}", source=str(path)) from None
    if data is None:
        raise ConfigError("is empty; a sweep file is a mapping of sections (name, data, model, ...)", source=str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"must be a mapping of sections (name, data, model, ...), got {_type_word(type(data).__name__)}", source=str(path))
    return data


def _yaml_problem(e: yaml.YAMLError) -> str:
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if isinstance(e, yaml.constructor.ConstructorError) and tag:
        # safe loading builds no Python objects: say so rather than quote PyYAML's internals
        shown = tag.group(1).replace("tag:yaml.org,2002:", "!!")
        return f"tag {shown} is not allowed (sweep files are read as plain YAML, no Python objects)"
    return problem


def _type_word(type_name: str) -> str:
    return {"list": "a list", "str": "a string", "int": "a number", "float": "a number", "bool": "true or false"}.get(type_name, type_name)


def set_path(raw: dict, path: str, value: Any) -> None:
    node = raw
    keys = path.split(".")
    for key in keys[:-1]:
        nxt = node.get(key)
        if not isinstance(nxt, dict):
            nxt = {}
            node[key] = nxt
        node = nxt
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"expected dotted.key=value, got {text!r}", source=SET_SOURCE)
    if not key_exists(key):
        raise ConfigError(_unknown_key(key), source=SET_SOURCE, path=key)
    try:
        return key, yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        return key, value


def _unknown_key(key: str) -> str:
    """'unknown key' with the closest names, at the first step of `key` that does not exist."""
    parts = key.split(".")
    for i in range(len(parts) - 1):  # a misspelt section (optimzer.lr) is named, not the leaf
        model = section_at(".".join(parts[:i]))
        if model is not None and not key_exists(".".join(parts[: i + 1])):
            return f"unknown key {parts[i]!r}{suggest(parts[i], field_names(model))}"
    parent, _, leaf = key.rpartition(".")
    model = section_at(parent)
    return "unknown key" + (suggest(leaf, field_names(model)) if model else "")


# keys that hold file-system paths: made absolute when the file is loaded, so that
# Ray workers (which run in other directories) find the same files
PATH_KEYS = ("data.path", "data.root", "data.test_path", "model.pretrained", "tracking.artifact_location")


def absolute_paths(raw: dict, base: Path) -> None:
    for key in PATH_KEYS:
        section, _, leaf = key.partition(".")
        node = raw.get(section)
        value = node.get(leaf) if isinstance(node, dict) else None
        if isinstance(value, str) and value and "://" not in value and not Path(value).expanduser().is_absolute():
            node[leaf] = str((base / value).resolve())
        elif isinstance(value, str) and value.startswith("~"):
            node[leaf] = str(Path(value).expanduser())


def validate(raw: dict, source: str, overridden: Iterable[str] = ()) -> SweepConfig:
    try:
        return SweepConfig.model_validate(raw)
    except ValidationError as e:
        path, message = first_error(e, raw)
        raise ConfigError(message, source=_source_of(path, source, overridden), path=path) from None


def _source_of(path: str, source: str, overridden: Iterable[str]) -> str:
    for key in overridden:
        if path == key or path.startswith((key + ".", key + "[")):
            return SET_SOURCE
    return source


def _field_type(path: str):
    parent, _, key = path.rpartition(".")
    model = section_at(parent)
    f = _field(model, key) if model else None
    return f.annotation if f else None


def _check_domain(path: str, dom: Domain, defaults: dict, source: str, overridden) -> None:
    src = _source_of(path, source, overridden)
    if not is_searchable(path):
        raise ConfigError(f"cannot be searched; give one value, not {dom.kind}", source=src, path=path)
    ann = _field_type(path)
    if dom.kind in ("uniform", "loguniform") and ann in (int,):
        raise ConfigError(f"is an integer; use {{int: [{dom.low}, {dom.high}]}} instead of {dom.kind}", source=src, path=path)
    for label, value in dom.candidates():
        trial = copy.deepcopy(defaults)
        set_path(trial, path, value)
        try:
            SweepConfig.model_validate(trial)
        except ValidationError as e:
            err_path, message = first_error(e, trial)
            if err_path == path or err_path.startswith(path + "."):
                raise ConfigError(f"{message} (in {label})", source=src, path=path) from None
            raise ConfigError(message + f" (with {path} = {show(value)})", source=_source_of(err_path, source, overridden), path=err_path) from None


def _cases(rows: list, defaults: dict, space: dict[str, Domain], source: str, overridden) -> Domain:
    from raysweep.config.cases import parse_cases

    src = _source_of(CASES_PATH, source, overridden)

    def fail(path: str, message: str) -> ConfigError:
        return ConfigError(message, source=src, path=path)

    def validate_row(where: str, row: dict) -> None:
        raw = copy.deepcopy(defaults)
        for key, value in row.items():
            set_path(raw, key, value)
        try:
            SweepConfig.model_validate(raw)
        except ValidationError as e:
            err_path, message = first_error(e, raw)
            if err_path in row:
                raise fail(f"{where}.{err_path}", message) from None
            raise fail(err_path, f"{message} (with {where})") from None

    return parse_cases(rows, space, fail, searchable=is_searchable, unknown=lambda key: None if key_exists(key) else _unknown_key(key), validate_row=validate_row)


def load_sweep(path: str | Path, overrides: Iterable[str] = (), *, run_checks: bool = True) -> Sweep:
    """Load, override and validate a sweep file; raise `ConfigError` on any mistake."""
    source = str(path)
    raw = read_yaml(path)
    parsed = [parse_override(o) for o in overrides]
    for key, value in parsed:
        set_path(raw, key, value)
    overridden = frozenset(k for k, _ in parsed)
    absolute_paths(raw, Path.cwd())  # relative paths mean: relative to where raysweep is run

    try:
        defaults, space = extract_domains(raw)
    except ConfigError as e:
        raise e.with_source(_source_of(e.path or "", source, overridden)) from None
    config = validate(defaults, source, overridden)
    for dpath, dom in space.items():
        _check_domain(dpath, dom, defaults, source, overridden)
    if config.search.cases is not None:
        # first, as a selector: a case may choose the loss or the schedule others depend on
        space = {CASES_PATH: _cases(config.search.cases, defaults, space, source, overridden), **space}

    sweep = Sweep(source=source, raw=raw, config=config, space=space, overridden=overridden)
    if run_checks:
        import raysweep.search.checks  # noqa: F401  (registers the search section's checks)
        from raysweep.config.checks import run_checks as _run

        _run(sweep)
    return sweep
