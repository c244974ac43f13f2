"""The checkpoints Ray Train kept for a sweep's trials, read from the sweep's storage.

Every checkpoint directory holds a small `meta.json` (epoch, metrics, their
history, classes, input shape, node), so a trial's progress and its best
checkpoint are known without loading any weights, on a local disk or any
pyarrow file system.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional

from raysweep.sweep.layout import filesystem, join


def trial_checkpoints(train_storage: str, trial_id: str) -> list[tuple[str, dict]]:
    """(path, meta) of each checkpoint Ray Train kept for the trial (best and latest)."""
    import pyarrow.fs

    fs, root = filesystem(join(train_storage, trial_id))
    out = []
    for info in fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True)):
        if info.type != pyarrow.fs.FileType.Directory or not info.base_name.startswith("checkpoint_"):
            continue
        try:
            with fs.open_input_stream(f"{info.path}/meta.json") as f:
                meta = json.loads(f.read().decode())
        except (OSError, ValueError):
            continue  # a diverged run's marker, or a checkpoint being (or cut short while) written
        uri = join(train_storage, trial_id, info.base_name)
        out.append((uri, meta))
    return out


def best_checkpoint(train_storage: str, trial_id: str, metric: str, mode: str) -> Optional[tuple[str, dict]]:
    scored = [(p, m) for p, m in trial_checkpoints(train_storage, trial_id) if isinstance(m["metrics"].get(metric), (int, float))]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda pm: pm[1]["metrics"][metric])


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
        with fs.open_input_stream(f"{path}/state.pt") as f:
            torch.load(__import__("io").BytesIO(f.read()), map_location="cpu", weights_only=True)
        return True
    except Exception:
        return False


def recover(train_storage: str, trial_id: str):
    """A Train run whose record of checkpoints was cut short (a full disk, a kill mid-write)
    cannot start again: Ray Train fails reading it. Move the damaged record aside and return
    the latest checkpoint that loads whole, to resume from; None when nothing is damaged."""
    from ray.train import Checkpoint

    snapshot = join(train_storage, trial_id, SNAPSHOT_FILE)
    fs, path = filesystem(snapshot)
    try:
        with fs.open_input_stream(path) as f:
            json.loads(f.read())
        return None
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        pass
    fs.move(path, path + ".damaged")
    for uri, _ in sorted(trial_checkpoints(train_storage, trial_id), key=lambda pm: -pm[1]["epoch"]):
        if _loads(uri):
            cfs, cpath = filesystem(uri)
            return Checkpoint(cpath, filesystem=cfs)
    return None
