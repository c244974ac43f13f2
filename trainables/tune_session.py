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
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import torch

from raysweep.config.schema import SweepConfig
from raysweep.scores import best, score
from raysweep.storage import copy_dir_into_place, filesystem, join
from trainables.checkpoint_files import checkpoint_name, stored_checkpoints
from trainables.report_keys import CHECKPOINT_PATH_KEY, NODE_KEY
from trainables.session import Session, TrialStopped


class TuneSession(Session):
    """The session of a trainer running in a Tune function actor (rank 0 of 1).

    `storage` is the trial's checkpoint folder (a local path or a pyarrow URI); `metric`
    and `mode` pick the best checkpoint to keep. `report` defaults to `ray.tune.report`."""

    def __init__(self, storage: str, metric: str, mode: str, report: Optional[Callable[[dict], None]] = None, device: Optional[str] = None,
                 resume_from: Optional[str] = None):
        self.storage = storage
        self.resume_from = resume_from  # a checkpoint folder to start from while `storage` has none
        self.metric = metric
        self.mode = mode
        self._report = report or _tune_report
        self.device = torch.device(device) if device else _assigned_device()
        self.node_id = _node_id()
        self._fs, self._root = filesystem(storage)
        if "://" not in storage:
            # checkpoints are written in the trial's folder and renamed into place, not copied (a
            # folder left by a kill is not named `checkpoint_*`: no reader takes it for one)
            os.makedirs(self._root, exist_ok=True)
            self.scratch_dir = self._root
        self._kept: dict[str, Optional[float]] = self._scan()  # checkpoint name -> objective

    # -- where checkpoints live ------------------------------------------------
    def _uri(self, name: str) -> str:
        return join(self.storage, name)

    def _path(self, name: str) -> str:
        return join(self._root, name)  # on self._fs

    def _scan(self) -> dict[str, Optional[float]]:
        """Complete checkpoints already here (a resumed trial), with their objective."""
        kept: dict[str, Optional[float]] = {}
        for stored in stored_checkpoints(self.storage):
            if stored.meta is not None and stored.has_state:
                kept[stored.name] = score(stored.meta.get("metrics", {}).get(self.metric))
            elif stored.diverged:
                kept[stored.name] = None
        return kept

    def location(self, name: str) -> str:
        """Where checkpoint `name` is kept (a path, or a URI for remote storage)."""
        return self._uri(name)

    def latest(self) -> Optional[str]:
        return max(self._kept, default=None)  # names carry the zero-padded epoch

    @contextlib.contextmanager
    def checkpoint_dir(self) -> Iterator[Optional[Path]]:
        name = self.latest()
        if name is None:
            yield Path(self.resume_from) if self.resume_from else None
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
        # the trainer's folder is its own and deleted after it reports: moved into place, not copied
        copy_dir_into_place(local, self._uri(name), move=True)  # a trial killed mid-copy leaves no half checkpoint

    def _retain(self, latest: str) -> None:
        """Keep the latest checkpoint and the best by the objective. One best is enough here: an
        inline trial waits in `tune.report` until Tune asks for its next result, so it never runs
        ahead of Tune's judgement as a Train run does (`trainables.launch.KEEP_BEST`)."""
        kept_best = best(self._kept, self.mode, key=self._kept.get)
        for name in list(self._kept):
            if name not in (latest, kept_best):
                self._fs.delete_dir(self._path(name))
                del self._kept[name]

    # -- the session interface -------------------------------------------------
    def report(self, metrics: dict[str, Any], checkpoint_dir: Optional[Path]) -> None:
        metrics = {**metrics, NODE_KEY: self.node_id}
        if checkpoint_dir is not None:
            # the checkpoint first: an epoch Tune hears of is always one that can be resumed
            name = checkpoint_name(metrics["epoch"])
            self._persist(Path(checkpoint_dir), name)
            self._kept[name] = score(metrics.get(self.metric))
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
