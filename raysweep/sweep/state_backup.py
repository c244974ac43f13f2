"""Keep a good copy of Ray Tune's experiment state, so a damaged one never ends a sweep.

Tune copies its state files (the trial list, the searcher, the search generator,
the tuner) to storage without making the copy atomic: when the results disk
fills up, or the driver dies mid-copy, storage keeps a truncated file. `Tuner.restore`
then logs "Failed to restore the run state" and silently starts the sweep over
with new trials. `StateBackup` copies each state file, once it parses whole, to
`raysweep_state_backup/` (each copy written under a temporary name and moved into
place); `repair` puts the last good copy back before a resume.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import time

from ray.tune import Callback

from raysweep.errors import ConfigError
from raysweep.storage import filesystem, join, read_bytes as _read, write_bytes as _write
from raysweep.sweep.layout import SweepLayout

log = logging.getLogger(__name__)

BACKUP_DIR = "raysweep_state_backup"
# Tune's state files: the newest of each pattern is what a restore reads
PATTERNS = ("experiment_state-*.json", "search_gen_state-*.json", "searcher-state-*.pkl", "tuner.pkl")
EVERY_S = 1.0  # how often storage is looked at; only changed files are read


def _whole(name: str, data: bytes) -> bool:
    """Whether a state file parses completely (a truncated copy does not). Tune writes
    JSON and cloudpickle (its search_gen_state-*.json is a pickle despite the name)."""
    if not data:
        return False
    try:
        json.loads(data)
        return True
    except ValueError:
        pass
    try:
        import cloudpickle

        cloudpickle.loads(data)
        return True
    except Exception:
        return False


def _newest(names: list[str], pattern: str):
    matching = sorted(n for n in names if fnmatch.fnmatch(n, pattern))  # names carry sortable timestamps
    return matching[-1] if matching else None


def _stamps(layout: SweepLayout) -> dict[str, tuple]:
    import pyarrow.fs

    fs, path = filesystem(layout.uri)
    infos = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    return {i.base_name: (i.size, i.mtime_ns) for i in infos if i.type == pyarrow.fs.FileType.File}


def backup(layout: SweepLayout, seen: dict[str, tuple] | None = None) -> dict[str, tuple]:
    """Copy each newest state file that parses whole (and changed since `seen`); new stamps."""
    seen = dict(seen or {})
    stamps = _stamps(layout)
    backup_dir = join(layout.uri, BACKUP_DIR)
    kept = SweepLayout(layout.uri, BACKUP_DIR)
    for pattern in PATTERNS:
        name = _newest(list(stamps), pattern)
        if name is None or seen.get(name) == stamps[name]:
            continue
        data = _read(layout.path(name))
        if not _whole(name, data):
            continue  # being copied right now: next time
        fs, path = filesystem(backup_dir)
        fs.create_dir(path, recursive=True)
        _write(join(backup_dir, name), data)
        seen[name] = stamps[name]
        for old in kept.listdir():
            if fnmatch.fnmatch(old, pattern) and old != name and not old.endswith(".tmp"):
                ofs, opath = filesystem(join(backup_dir, old))
                ofs.delete_file(opath)
    return seen


def repair(layout: SweepLayout) -> list[str]:
    """Replace damaged or missing state files by their last good copies; the names restored."""
    names = layout.listdir()
    kept = SweepLayout(layout.uri, BACKUP_DIR)
    kept_names = kept.listdir() if BACKUP_DIR in names else []
    restored = []
    for pattern in PATTERNS:
        name = _newest(names, pattern)
        if name is not None and _whole(name, _read(layout.path(name))):
            continue
        good = _newest(kept_names, pattern)
        if good is None:
            if name is None:
                continue  # the sweep never got this far (no trial started)
            raise ConfigError(f"Ray Tune's state file {name} is damaged (cut short while written?) and no good copy was kept", source=layout.uri)
        if name is not None and name != good:
            fs, path = filesystem(layout.path(name))
            fs.delete_file(path)  # newer than the good copy: Tune would read it first
        _write(layout.path(good), _read(kept.path(good)))
        restored.append(good)
    return restored


class StateBackup(Callback):
    """Backs up Tune's state files as they change (looked at every `EVERY_S` s) and at the end."""

    def __init__(self, layout: SweepLayout):
        self.layout = layout
        self._last = 0.0
        self._seen: dict[str, tuple] = {}

    def _maybe(self, force: bool = False) -> None:
        if force or time.monotonic() - self._last >= EVERY_S:
            self._last = time.monotonic()
            try:
                self._seen = backup(self.layout, self._seen)
            except OSError as e:  # a full or unreachable disk: the previous copy stays
                log.warning("could not back up the sweep's state: %s", e)

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        self._maybe()

    def on_experiment_end(self, trials: list, **info) -> None:
        self._maybe(force=True)
