"""Where a trainer runs: inside a Ray Train worker group, or in this process.

The trainer talks only to a `Session`: prepare the model and loaders, gather
objects across workers, fetch the checkpoint to resume from, and report an
epoch's metrics with its checkpoint. `RaySession` does this through Ray Train
(DDP over gloo or NCCL); `LocalSession` runs the same loop in one process,
for unit tests and for a one-worker trial that needs no worker group.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

import torch
from torch import distributed as dist
from torch.utils.data import DataLoader


# Result key carrying the worker group's placement group id (hex), reported by rank 0 so the
# sweep driver can free it when Tune stops the trial (raysweep.sweep.callbacks.WorkerGroupReaper).
PG_KEY = "_pg"
NODE_KEY = "_node"  # the Ray node rank 0 runs on (where a trial's workers were placed)


class TrialStopped(SystemExit):
    """Raised out of `Session.report` when the trial's scheduler has stopped the trial (ASHA
    pruned it, or it reached max_t): an end, not an error. It must leave the trial function (one
    that returns is reported once more by Tune's wrapper, to a session Tune has shut down), and as
    a `SystemExit` with code 0, like Tune's own stop signal, Tune's trial thread ends without a word."""

    def __init__(self) -> None:
        super().__init__(0)


class Session:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    # where the trainer writes a checkpoint before `report` hands it over (None: the system's
    # temporary folder); a session that moves checkpoints into place names one on their file system
    scratch_dir: Optional[str] = None

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(self.device)

    def prepare_loader(self, loader: DataLoader) -> DataLoader:
        return loader

    def set_epoch(self, loader: DataLoader, epoch: int) -> None:
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)

    def all_gather_object(self, obj: Any) -> list[Any]:
        return [obj]

    def all_reduce_max(self, value: float) -> float:
        return value

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    @contextlib.contextmanager
    def checkpoint_dir(self) -> Iterator[Optional[Path]]:
        """The directory of the checkpoint to resume from, if any."""
        yield None

    def report(self, metrics: dict[str, Any], checkpoint_dir: Optional[Path]) -> None:
        """Hand an epoch to whoever runs the trial; raises `TrialStopped` when that was its last."""
        raise NotImplementedError

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class LocalSession(Session):
    """One process; checkpoints are copied under `storage` (epoch_0001, ...)."""

    def __init__(self, storage: str | Path | None = None, resume_from: str | Path | None = None, device: str | None = None):
        self.storage = Path(storage or tempfile.mkdtemp(prefix="raysweep-local-"))
        self.resume_from = Path(resume_from) if resume_from else None
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.results: list[dict[str, Any]] = []
        self.checkpoints: list[Path] = []

    @contextlib.contextmanager
    def checkpoint_dir(self) -> Iterator[Optional[Path]]:
        yield self.resume_from

    def report(self, metrics: dict[str, Any], checkpoint_dir: Optional[Path]) -> None:
        self.results.append(dict(metrics))
        if checkpoint_dir is not None:
            dest = self.storage / f"epoch_{int(metrics['epoch']):04d}"
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(checkpoint_dir, dest)
            self.checkpoints.append(dest)


class RaySession(Session):
    """Inside `train_loop_per_worker` of a Ray Train `TorchTrainer`."""

    def __init__(self, resume_from=None):
        import ray
        import ray.train
        import ray.train.torch
        import ray.util

        self._resume_from = resume_from  # a `Checkpoint` to start from while the run has none of its own
        self._train = ray.train
        self._torch = ray.train.torch
        ctx = ray.train.get_context()
        self.rank = ctx.get_world_rank()
        self.world_size = ctx.get_world_size()
        self.device = ray.train.torch.get_device()
        pg = ray.util.get_current_placement_group()
        self.pg_hex = pg.id.hex() if pg is not None else None
        self.node_id = ray.get_runtime_context().get_node_id()

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        return self._torch.prepare_model(model)

    def prepare_loader(self, loader: DataLoader) -> DataLoader:
        return self._torch.prepare_data_loader(loader)

    def all_gather_object(self, obj: Any) -> list[Any]:
        if self.world_size == 1:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def all_reduce_max(self, value: float) -> float:
        if self.world_size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    @contextlib.contextmanager
    def checkpoint_dir(self) -> Iterator[Optional[Path]]:
        ckpt = self._train.get_checkpoint() or self._resume_from
        if ckpt is None:
            yield None
            return
        with ckpt.as_directory() as d:
            yield Path(d)

    def report(self, metrics: dict[str, Any], checkpoint_dir: Optional[Path]) -> None:
        checkpoint = None
        if checkpoint_dir is not None and self.is_main:
            checkpoint = self._train.Checkpoint.from_directory(str(checkpoint_dir))
        if self.is_main:
            metrics = {**metrics, PG_KEY: self.pg_hex, NODE_KEY: self.node_id}
        self._train.report(metrics, checkpoint=checkpoint)
