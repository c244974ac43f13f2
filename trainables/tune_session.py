"""A one-worker trial trained in its Ray Tune trial actor, with no Ray Train worker
group (`resources.inline: true`).

A worker group costs seconds per trial (a controller and a worker process that import
torch, timm and the data, and set up a process group) for nothing a single worker
needs. Inline, the Tune function runs the `Trainer` itself, in a `TuneSession`:

- metrics go to Tune with `ray.tune.report`, carrying the checkpoint's location as
  `checkpoint_path`, as Train's `TuneReportCallback` forwards them;
- checkpoints are persisted where Ray Train would have kept them,
  `<train storage>/<trial id>/checkpoint_<epoch>`, holding the best by the objective and
  the latest, so `raysweep report`, the MLflow best model and a resumed sweep read
  them as they read Train's;
- a trial run again (a resumed sweep) continues from the latest of them.

    run_inline(cfg, "<train storage>/<trial id>", listeners)   # inside a Tune function
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import torch

from raysweep.config.schema import SweepConfig
from trainables.session import NODE_KEY, Session, TrialStopped

CHECKPOINT_PREFIX = "checkpoint_"
CHECKPOINT_PATH_KEY = "checkpoint_path"  # the key Train's TuneReportCallback gives Tune
_META = "meta.json"  # written by the trainer into every checkpoint but a divergence marker
_MARKER = "diverged.json"
_STATE = "state.pt"


def _filesystem(uri: str):
    import pyarrow.fs

    if "://" in uri:
        return pyarrow.fs.FileSystem.from_uri(uri)
    return pyarrow.fs.LocalFileSystem(), uri


class TuneSession(Session):
    """The session of a trainer running in a Tune function actor (rank 0 of 1).

    `storage` is the trial's checkpoint folder (a local path or a pyarrow URI); `metric`
    and `mode` pick the best checkpoint to keep. `report` defaults to `ray.tune.report`."""

    def __init__(self, storage: str, metric: str, mode: str, report: Optional[Callable[[dict], None]] = None, device: Optional[str] = None):
        self.storage = storage
        self.metric = metric
        self.mode = mode
        self._report = report or _tune_report
        self.device = torch.device(device) if device else _assigned_device()
        self.node_id = _node_id()
        self._fs, self._root = _filesystem(storage)
        if "://" not in storage:
            # checkpoints are written in the trial's folder and renamed into place, not copied (a
            # folder left by a kill is not named `checkpoint_*`: no reader takes it for one)
            os.makedirs(self._root, exist_ok=True)
            self.scratch_dir = self._root
        self._kept: dict[str, Optional[float]] = self._scan()  # checkpoint name -> objective

    # -- where checkpoints live ------------------------------------------------
    def _uri(self, name: str) -> str:
        return posixpath.join(self.storage, name) if "://" in self.storage else str(Path(self.storage, name))

    def _path(self, name: str) -> str:
        return posixpath.join(self._root, name) if "://" in self.storage else str(Path(self._root, name))

    def _read(self, path: str) -> Optional[bytes]:
        try:
            with self._fs.open_input_stream(path) as f:
                return f.read()
        except (FileNotFoundError, OSError):
            return None

    def _scan(self) -> dict[str, Optional[float]]:
        """Complete checkpoints already here (a resumed trial), with their objective."""
        import pyarrow.fs

        kept: dict[str, Optional[float]] = {}
        for info in self._fs.get_file_info(pyarrow.fs.FileSelector(self._root, allow_not_found=True)):
            name = info.base_name
            if info.type != pyarrow.fs.FileType.Directory or not name.startswith(CHECKPOINT_PREFIX):
                continue
            meta = self._read(f"{info.path}/{_META}")
            if meta is not None and self._is_file(f"{info.path}/{_STATE}"):
                kept[name] = _score(json.loads(meta).get("metrics", {}).get(self.metric))
            elif self._is_file(f"{info.path}/{_MARKER}"):
                kept[name] = None
        return kept

    def _is_file(self, path: str) -> bool:
        import pyarrow.fs

        return self._fs.get_file_info(path).type == pyarrow.fs.FileType.File

    def latest(self) -> Optional[str]:
        return max(self._kept, default=None)  # names carry the zero-padded epoch

    @contextlib.contextmanager
    def checkpoint_dir(self) -> Iterator[Optional[Path]]:
        name = self.latest()
        if name is None:
            yield None
            return
        if "://" not in self.storage:
            yield Path(self._path(name))
            return
        import pyarrow.fs

        local = tempfile.mkdtemp(prefix="raysweep-resume-")
        try:
            pyarrow.fs.copy_files(self._path(name), local, source_filesystem=self._fs)
            yield Path(local)
        finally:
            shutil.rmtree(local, ignore_errors=True)

    def _persist(self, local: Path, name: str) -> None:
        dest = self._path(name)
        if "://" in self.storage:
            import pyarrow.fs

            self._fs.delete_dir_contents(dest, missing_dir_ok=True)
            pyarrow.fs.copy_files(str(local), dest, destination_filesystem=self._fs)
            return
        # a complete copy renamed into place: a trial killed mid-copy leaves no half checkpoint
        os.makedirs(self._root, exist_ok=True)
        partial = self._path(f".{name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            os.rename(local, partial)  # the trainer's folder is its own and deleted after: moved, not copied
        except OSError:  # another file system
            shutil.copytree(local, partial)
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(partial, dest)

    def _retain(self, latest: str) -> None:
        """Keep the latest checkpoint and the best by the objective. One best is enough here: an
        inline trial waits in `tune.report` until Tune asks for its next result, so it never runs
        ahead of Tune's judgement as a Train run does (`trainables.launch.KEEP_BEST`)."""
        scored = {n: s for n, s in self._kept.items() if s is not None}
        best = (max if self.mode == "max" else min)(scored, key=scored.get) if scored else None
        for name in list(self._kept):
            if name not in (latest, best):
                self._fs.delete_dir(self._path(name))
                del self._kept[name]

    # -- the session interface -------------------------------------------------
    def report(self, metrics: dict[str, Any], checkpoint_dir: Optional[Path]) -> None:
        metrics = {**metrics, NODE_KEY: self.node_id}
        if checkpoint_dir is not None:
            # the checkpoint first: an epoch Tune hears of is always one that can be resumed
            name = f"{CHECKPOINT_PREFIX}{int(metrics['epoch']):06d}"
            self._persist(Path(checkpoint_dir), name)
            self._kept[name] = _score(metrics.get(self.metric))
            self._retain(name)
            metrics[CHECKPOINT_PATH_KEY] = self._uri(name)
        try:
            self._report(metrics)
        except SystemExit as e:
            # how `ray.tune.report` ends a trial Tune has stopped: sys.exit(0) in the trial's thread
            # (ray/train/_internal/session.py, `_report_training_result`)
            if e.code not in (0, None):
                raise
            raise TrialStopped() from None


def _score(value: Any) -> Optional[float]:
    import math

    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _tune_report(metrics: dict) -> None:
    from ray import tune

    tune.report(metrics)


def _assigned_device() -> torch.device:
    """The GPU Ray gave this actor (Ray sets CUDA_VISIBLE_DEVICES to it), else the CPU."""
    import ray

    if ray.is_initialized() and ray.get_gpu_ids() and torch.cuda.is_available():
        return torch.device("cuda", 0)
    return torch.device("cpu")


def _node_id() -> Optional[str]:
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def run_inline(cfg: SweepConfig, storage: str, listeners: Sequence = ()) -> dict[str, Any]:
    """Train one trial in this process (a Tune function actor); return its last metrics."""
    from trainables.trainer import Trainer
    from trainables.worker import worker_threads

    torch.set_num_threads(worker_threads(cfg.resources.cpus_per_worker))
    session = TuneSession(storage, cfg.search.primary_metric, cfg.search.primary_mode)
    return Trainer(cfg, session, listeners=listeners).fit()
