"""The files of a trainer checkpoint, and their one reader and writer.

A trial's checkpoints live in `<train storage>/<trial id>/checkpoint_<n>/` (Ray Train
names them; an inline trial, `trainables.tune_session`, uses the same names) and hold:

    state.pt            weights, optimizer, RNG and history (`trainables.checkpoint`, torch)
    meta.json           epoch, metrics and their history, classes, task, input shape, node,
                        MLflow run id: what the driver reads without loading any weights
    trial_config.json   the trial's resolved config (re-run it with `raysweep train`)
    predictions.npz     the validation targets and scores per fold
    splits.npz          per split, per sample: 0 train, 1 validation, -1 unused
    diverged.json       instead of all of the above: the marker of a run whose loss became non-finite

This module imports neither torch nor Ray, so the sweep's driver and `raysweep report`
read checkpoints through it as the trainer writes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from raysweep.storage import filesystem, join

CHECKPOINT_PREFIX = "checkpoint_"
STATE_FILE = "state.pt"
META_FILE = "meta.json"
CONFIG_FILE = "trial_config.json"
PREDICTIONS_FILE = "predictions.npz"
SPLITS_FILE = "splits.npz"
DIVERGED_FILE = "diverged.json"


def checkpoint_name(epoch: int) -> str:
    """The directory name of an epoch's checkpoint (zero-padded: names sort by epoch)."""
    return f"{CHECKPOINT_PREFIX}{int(epoch):06d}"


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    (Path(directory) / META_FILE).write_text(json.dumps(meta))


def read_meta(checkpoint_uri: str) -> Optional[dict[str, Any]]:
    """A checkpoint's meta (a local path or URI), or None where it has none that parses (a
    divergence marker, or a checkpoint being written or cut short while written)."""
    return _read_json(checkpoint_uri, META_FILE)


def read_config(checkpoint_uri: str) -> Optional[dict[str, Any]]:
    """The trial's resolved config a checkpoint keeps (a local path or URI), or None."""
    return _read_json(checkpoint_uri, CONFIG_FILE)


def _read_json(checkpoint_uri: str, name: str) -> Optional[dict[str, Any]]:
    fs, path = filesystem(join(checkpoint_uri, name))
    try:
        with fs.open_input_stream(path) as f:
            return json.loads(f.read().decode())
    except (OSError, ValueError):
        return None


def write_diverged(directory: Path, epoch: int, error: str) -> None:
    (Path(directory) / DIVERGED_FILE).write_text(json.dumps({"epoch": epoch, "error": error}))


def read_diverged(directory: Optional[Path]) -> Optional[dict[str, Any]]:
    """The divergence marker in a local checkpoint directory: {"epoch", "error"}, or None."""
    marker = None if directory is None else Path(directory) / DIVERGED_FILE
    return json.loads(marker.read_text()) if marker is not None and marker.exists() else None


@dataclass(frozen=True)
class Stored:
    """One checkpoint directory of a trial, as found in storage."""

    name: str
    uri: str
    meta: Optional[dict[str, Any]]  # None: no meta that parses
    has_state: bool
    diverged: bool


def stored_checkpoints(trial_uri: str) -> list[Stored]:
    """The checkpoint directories under a trial's folder (a local path or URI), by name."""
    import pyarrow.fs

    fs, root = filesystem(trial_uri)
    out = []
    for info in fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True)):
        if info.type != pyarrow.fs.FileType.Directory or not info.base_name.startswith(CHECKPOINT_PREFIX):
            continue
        state, marker = fs.get_file_info([f"{info.path}/{STATE_FILE}", f"{info.path}/{DIVERGED_FILE}"])
        uri = join(trial_uri, info.base_name)
        out.append(Stored(
            name=info.base_name, uri=uri, meta=read_meta(uri),
            has_state=state.type == pyarrow.fs.FileType.File, diverged=marker.type == pyarrow.fs.FileType.File,
        ))
    return sorted(out, key=lambda s: s.name)


def trial_checkpoints(train_storage: str, trial_id: str) -> list[tuple[str, dict]]:
    """(uri, meta) of each checkpoint kept for a trial that has its meta (best and latest)."""
    return [(s.uri, s.meta) for s in stored_checkpoints(join(train_storage, trial_id)) if s.meta is not None]
