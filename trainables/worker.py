"""The function every Ray Train worker runs: `train_loop_per_worker`.

It receives the trial's validated `SweepConfig` (pickled by Ray, not
re-parsed) and runs the `Trainer` in a `RaySession`.
"""

from __future__ import annotations

import logging
import math

import torch

from raysweep.config.schema import SweepConfig


def worker_threads(cpus_per_worker: float) -> int:
    """Intra-op threads for a worker: its whole CPUs, at least one."""
    return max(1, math.floor(cpus_per_worker))


def quiet_ray_train_reports() -> None:
    """Ray Train logs every report with all its metrics at INFO, through a logger named
    after its file path, which `LoggingConfig(log_level=...)` does not reach."""
    from ray.train.v2._internal.execution import context

    logging.getLogger(context.__file__).setLevel(logging.WARNING)


def train_loop_per_worker(config: dict) -> None:
    from trainables.session import RaySession
    from trainables.trainer import Trainer

    quiet_ray_train_reports()
    cfg: SweepConfig = config["cfg"]
    torch.set_num_threads(worker_threads(cfg.resources.cpus_per_worker))
    session = RaySession(resume_from=config.get("resume_from"))
    Trainer(cfg, session, verbose=config.get("verbose", False), listeners=config.get("listeners", ()), fold_groups=config.get("fold_groups", 1)).fit()
