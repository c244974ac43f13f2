"""The checkpoints Ray Train kept for a sweep's trials, read from the sweep's storage.

Every checkpoint directory holds a small `meta.json` (epoch, metrics, their
history, classes, input shape, node), so a trial's progress and its best
checkpoint are known without loading any weights, on a local disk or any
pyarrow file system.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Optional

from raysweep.scores import best
from raysweep.storage import filesystem, join
from trainables.checkpoint_files import STATE_FILE, trial_checkpoints

log = logging.getLogger(__name__)


def best_checkpoint(train_storage: str, trial_id: str, metric: str, mode: str, max_epoch: Optional[int] = None) -> Optional[tuple[str, dict]]:
    """(uri, meta) of the trial's kept checkpoint best by `metric`, up to epoch `max_epoch`."""
    judged = [(p, m) for p, m in trial_checkpoints(train_storage, trial_id) if max_epoch is None or m["epoch"] <= max_epoch]
    return best(judged, mode, key=lambda pm: pm[1]["metrics"].get(metric))


def trial_history(train_storage: str, trial_id: str) -> list[dict]:
    """The trial's per-epoch metrics as its newest checkpoint records them (every checkpoint
    carries the whole history up to its epoch): what a restarted trial continues from."""
    kept = trial_checkpoints(train_storage, trial_id)
    if not kept:
        return []
    _, meta = max(kept, key=lambda pm: pm[1]["epoch"])
    return list(meta.get("history", []))


def download(uri: str) -> Path:
    from ray.train import Checkpoint

    target = Path(tempfile.mkdtemp(prefix="raysweep-artifacts-"))
    if "://" in uri:
        fs, path = filesystem(uri)
        return Path(Checkpoint(path, filesystem=fs).to_directory(str(target)))
    return Path(uri)


SNAPSHOT_FILE = "checkpoint_manager_snapshot.json"  # Ray Train's record of a run's checkpoints


def _loads(uri: str) -> bool:
    """Whether a checkpoint's state loads whole."""
    import torch

    fs, path = filesystem(uri)
    try:
        with fs.open_input_stream(f"{path}/{STATE_FILE}") as f:
            torch.load(__import__("io").BytesIO(f.read()), map_location="cpu", weights_only=True)
        return True
    except Exception:
        return False


def recover(train_storage: str, trial_id: str):
    """The checkpoint a restarted trial must resume from where Ray Train's own record of its
    run would pick another, else None (Train's record is right).

    Two cases. The record was cut short (a full disk, a kill mid-write): Ray Train fails reading
    it. Or it lags: the worker had persisted a checkpoint whole but the driver was killed before
    the controller recorded it, and Train would redo that epoch. Either way the record is moved
    aside and the newest checkpoint that loads whole is returned."""
    from ray.train import Checkpoint

    snapshot = join(train_storage, trial_id, SNAPSHOT_FILE)
    fs, path = filesystem(snapshot)
    try:
        with fs.open_input_stream(path) as f:
            recorded = _recorded_epoch(json.loads(f.read()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        recorded = None  # damaged
    newest_first = sorted(trial_checkpoints(train_storage, trial_id), key=lambda pm: -pm[1]["epoch"])
    if recorded is not None:
        newest_first = [(uri, meta) for uri, meta in newest_first if meta["epoch"] > recorded]
    found = next((uri for uri, _ in newest_first if _loads(uri)), None)
    if recorded is not None and found is None:
        return None  # nothing newer than the record that loads: Train's record stands
    fs.move(path, path + (".damaged" if recorded is None else ".behind"))
    if found is None:
        return None
    log.warning("trial %s: Ray Train's checkpoint record is %s; resuming from %s", trial_id, "damaged" if recorded is None else f"at epoch {recorded}", found)
    cfs, cpath = filesystem(found)
    return Checkpoint(cpath, filesystem=cfs)


def _recorded_epoch(snapshot: dict) -> int:
    latest = (snapshot or {}).get("latest_checkpoint_result") or {}
    return int((latest.get("metrics") or {}).get("epoch", -1))
