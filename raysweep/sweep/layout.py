"""Where a sweep lives: `<storage>/<sweep id>/`, on a local disk or any
pyarrow file system (`s3://`, `gs://`, NFS mounts).

    <storage>/<sweep id>/
        raysweep_sweep.yaml      the sweep file as run (overrides applied)
        raysweep_manifest.json   id, source, config hash, trials asked, versions
        experiment_state-*.json  Ray Tune's experiment (trials, searcher, scheduler)
        <trial dirs>/            Tune's per-trial results (progress.csv, result.json)
        train/<trial id>/        each trial's Ray Train run: its checkpoints
        logs/                    what Ray, Tune and the trials printed (`raysweep.terminal`)

The Train run of a trial is named after its Tune trial id and stored inside
its sweep, so a resumed trial finds its own checkpoints and a new sweep never
finds another's. With remote storage the logs stay on the driver's machine, in
`./raysweep_logs/<sweep id>/`: a log is appended line by line, which object stores cannot do.
"""

from __future__ import annotations

import json
import os
import posixpath
import shlex
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from raysweep.errors import ConfigError, UserError
from raysweep.storage import exists as _exists, filesystem, join, read_bytes, storage_uri, write_bytes

SWEEP_FILE = "raysweep_sweep.yaml"
MANIFEST_FILE = "raysweep_manifest.json"
TRAIN_DIR = "train"
LOGS_DIR = "logs"
REMOTE_LOGS_ROOT = "raysweep_logs"  # under the working directory, for a sweep in remote storage
INTERRUPTED_FILE = "raysweep_interrupted.json"  # a sweep stopped by Ctrl-C, until resumed
STOPPING_RULE = "stopping_rule"  # the manifest's key for the trial scheduler that ran (asha, median, none...)
DEFAULT_STORAGE = "raysweep_results"


def check_storage(storage: str) -> None:
    """Refuse a local `--storage` that cannot hold results, before Ray starts. The
    nearest existing directory is probed with a temporary file; nothing that stays
    is created, so a refused run leaves no results directory. URIs are left to pyarrow."""
    if "://" in storage:
        return
    target = Path(storage_uri(storage))
    existing = next(p for p in (target, *target.parents) if os.path.exists(p))
    prefix = "" if existing == target else f"cannot create {storage}: "
    if not existing.is_dir():
        shown = storage if existing == target else str(existing)
        raise UserError(f"{prefix}{shown} is a file, not a directory", source="--storage")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise UserError(f"{prefix}cannot write to {existing}: {e.strerror or e}", source="--storage") from None


def check_name_free(storage: str, name: str) -> None:
    """Refuse a `--name` already taken under `storage`, before Ray starts. Only the default
    name (the file's) is made unique: a name the user chose is the one they will look for."""
    layout = SweepLayout(storage_uri(storage), name)
    if not _exists(layout.uri):
        return
    if not layout.exists():
        raise UserError(f"{layout.uri} already exists and holds no sweep; choose another --name", source="--name")
    elsewhere = "" if storage == DEFAULT_STORAGE else f" --storage {shlex.quote(storage)}"
    raise UserError(
        f"sweep {name!r} already exists in {layout.storage}; continue it with 'raysweep resume {name}{elsewhere}', or choose another --name",
        source="--name",
    )


@dataclass(frozen=True)
class SweepLayout:
    storage: str  # absolute path or URI of the storage root
    sweep_id: str

    @property
    def uri(self) -> str:
        return join(self.storage, self.sweep_id)

    @property
    def train_storage(self) -> str:
        return join(self.uri, TRAIN_DIR)

    @property
    def log_dir(self) -> str:
        """A local directory for the sweep's logs: in the sweep on a local disk, else beside
        where raysweep runs."""
        if "://" in self.storage:
            return str(Path.cwd() / REMOTE_LOGS_ROOT / self.sweep_id)
        return join(self.uri, LOGS_DIR)

    def path(self, name: str) -> str:
        return join(self.uri, name)

    def write_text(self, name: str, text: str) -> None:
        write_bytes(self.path(name), text.encode())  # a reader never sees half a file

    def has(self, name: str) -> bool:
        return _exists(self.path(name))

    def remove(self, name: str) -> None:
        fs, path = filesystem(self.path(name))
        try:
            fs.delete_file(path)
        except FileNotFoundError:
            pass

    def read_text(self, name: str) -> str:
        return self.read_bytes(name).decode()

    def read_bytes(self, name: str) -> bytes:
        return read_bytes(self.path(name))

    def listdir(self) -> list[str]:
        import pyarrow.fs

        fs, path = filesystem(self.uri)
        infos = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
        return [posixpath.basename(i.path) for i in infos]

    def exists(self) -> bool:
        return _exists(self.path(MANIFEST_FILE))

    # -- the sweep it holds ------------------------------------------------------
    def save(self, sweep, manifest: dict[str, Any]) -> None:
        self.save_sweep(sweep)
        self.save_manifest(manifest)

    def save_sweep(self, sweep) -> None:
        self.write_text(SWEEP_FILE, yaml.safe_dump(sweep.raw, sort_keys=False))

    def save_manifest(self, manifest: dict[str, Any]) -> None:
        self.write_text(MANIFEST_FILE, json.dumps({"sweep_id": self.sweep_id, **manifest}, indent=1, default=str))

    def manifest(self) -> dict[str, Any]:
        return json.loads(self.read_text(MANIFEST_FILE))

    def load_sweep(self, overrides: tuple[str, ...] = ()):
        """The sweep file as run; with `overrides`, as `raysweep extend` runs it on (unchecked)."""
        from raysweep.config.load import load_sweep

        text = self.read_text(SWEEP_FILE)
        local = Path(_local_copy_dir()) / f"{self.sweep_id}.yaml"
        local.write_text(text)
        try:
            # checked when the sweep started (`raysweep.commands.load_checked`; an extension's
            # overrides by `raysweep extend`): the checks that ask the trainables' registries
            # would import torch and timm into `raysweep report`, which only reads a table
            return load_sweep(local, overrides)
        except UserError as e:
            raise e.with_source(self.path(SWEEP_FILE)) from None

    # -- finding and naming sweeps -------------------------------------------------
    @classmethod
    def new(cls, storage: str, name: str) -> "SweepLayout":
        """A fresh sweep directory: `name`, or `name-2`, `name-3`, ... if taken."""
        root = storage_uri(storage)
        candidate = cls(root, name)
        n = 2
        while _exists(candidate.uri):
            candidate = cls(root, f"{name}-{n}")
            n += 1
        return candidate

    @classmethod
    def find(cls, name_or_path: str, storage: str = DEFAULT_STORAGE) -> "SweepLayout":
        """A sweep by its directory (path or URI) or by its id under `storage`."""
        for uri in (storage_uri(name_or_path), join(storage_uri(storage), name_or_path)):
            layout = cls.find_dir(uri)
            if layout is not None:
                return layout
        raise ConfigError(_not_found(name_or_path, storage), source=name_or_path)

    @classmethod
    def find_dir(cls, uri: str) -> Optional["SweepLayout"]:
        """The sweep whose directory is `uri` (absolute path or URI), if it holds one."""
        parent, sweep_id = (posixpath.split(uri.rstrip("/")) if "://" in uri else (str(Path(uri).parent), Path(uri).name))
        layout = cls(parent, sweep_id)
        return layout if layout.exists() else None


def _not_found(name_or_path: str, storage: str) -> str:
    """Where `find` looked, and what to pass instead: a sweep run with `--storage DIR` is only
    found by id with the same `--storage DIR`."""
    where = f"no sweep {name_or_path!r} under {storage_uri(storage)}"
    if "/" in name_or_path or name_or_path in (".", ".."):
        return f"{where}, nor a sweep directory at {storage_uri(name_or_path)}"
    return f"{where} (--storage); pass the --storage DIR it was run with, or the sweep's directory"


def _local_copy_dir() -> str:
    return tempfile.mkdtemp(prefix="raysweep-sweep-")


def manifest_for(sweep, *, num_trials: int, num_configs: int, replicas: int, extra: Optional[dict] = None) -> dict[str, Any]:
    from raysweep import __version__

    return {
        "name": sweep.name,
        "source": sweep.source,
        "overrides": sorted(sweep.overridden),
        "config_hash": sweep.config_hash(),
        "num_trials": num_trials,
        "num_configs": num_configs,
        "replicas": replicas,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "raysweep_version": __version__,
        **(extra or {}),
    }
