"""Which MLflow store a sweep tracks to, and what it may hold.

Default: `sqlite:///<here>/mlflow.db` with artifacts in `<here>/mlartifacts`,
where `<here>` is the directory raysweep runs in (absolute, because Ray
workers run elsewhere). `tracking.uri` or `MLFLOW_TRACKING_URI` select another
store, typically an `mlflow server` with proxied artifacts, so workers on other
nodes need no shared file system (credentials come from
`MLFLOW_TRACKING_USERNAME`/`_PASSWORD` in the environment, never the config).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

from raysweep.config.schema import SweepConfig
from raysweep.search import conditions

DEFAULT_DB = "mlflow.db"
DEFAULT_ARTIFACTS = "mlartifacts"
REDACTED = "***"
# keys whose values must never reach MLflow params, tags or logs
_SECRET_KEY = re.compile(r"(pass(word|wd)?|secret|token|credential|api[_-]?key|access[_-]?key|private[_-]?key|auth)", re.I)


@dataclass(frozen=True)
class TrackingTarget:
    """Everything a trial needs to log to the sweep's MLflow runs (picklable, no client)."""

    uri: str
    experiment_id: str
    parent_run_id: Optional[str]  # None for `raysweep train`: a run of its own, in no sweep
    sweep_id: str

    def describe(self) -> str:
        parent = f", sweep run {self.parent_run_id}" if self.parent_run_id else ""
        return f"{redact_uri(self.uri)}, experiment {self.experiment_id}{parent}"


def tracking_uri(cfg: SweepConfig) -> str:
    uri = cfg.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{(Path.cwd() / DEFAULT_DB).resolve()}"


def artifact_root(cfg: SweepConfig, uri: str) -> Optional[str]:
    """Artifact root of a new experiment; None lets a tracking server choose (proxied artifacts)."""
    if cfg.tracking.artifact_location:
        return cfg.tracking.artifact_location
    if uri.startswith(("http://", "https://", "databricks")):
        return None
    return str((Path.cwd() / DEFAULT_ARTIFACTS).resolve())


def redact_uri(uri: str) -> str:
    """A URI without the user:password it may carry."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{REDACTED}@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


_URI_CREDENTIALS = re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/\s@]+@", re.I)


def redact_text(text: str) -> str:
    """`text` (an error message, which MLflow's may quote a request URL in) with the
    user:password of every URI in it replaced."""
    return _URI_CREDENTIALS.sub(rf"\1{REDACTED}@", text)


def redact(key: str, value: Any) -> Any:
    """`value`, or `***` when `key` names a secret; URIs lose their credentials."""
    if _SECRET_KEY.search(key.rsplit(".", 1)[-1]):
        return REDACTED
    if isinstance(value, str) and "://" in value:
        return redact_uri(value)
    return value


def flat_params(config: dict, prefix: str = "") -> dict[str, str]:
    """A nested config as flat dotted MLflow params (strings, secrets redacted)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flat_params(value, path))
        else:
            out[path] = str(redact(path, value))[:6000]  # MLflow's limit on a param value
    return out


def trial_params(cfg: SweepConfig) -> dict[str, str]:
    """The params of a trial's run: the resolved config, flat and redacted, without the keys that
    hold nothing (None, empty mappings) and without the `loss.*` / `optimizer.*` / `scheduler.*`
    keys the chosen variant does not take (a `ce` trial has no `loss.gamma`), as the search
    space's conditions decide (`raysweep.search.conditions`)."""
    config = _without_empty(cfg.model_dump(mode="json", by_alias=True, exclude_none=True))
    chosen = {f"{section}.name": config[section]["name"] for section in conditions.SECTIONS}
    return {path: value for path, value in flat_params(config).items() if conditions.applies(path, chosen)}


def _without_empty(config: dict) -> dict:
    return {k: _without_empty(v) if isinstance(v, dict) else v for k, v in config.items() if v != {}}
