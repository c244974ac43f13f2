"""Build the Ray Train `TorchTrainer` of one trial from its config.

Used by `raysweep train` (one trial from the driver) and by the Tune trial
function (one trial per Tune trial). DDP runs over gloo on CPU and NCCL on GPU.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

from raysweep.config.schema import SweepConfig

# A worker group that cannot start in this time fails (and is retried) rather than waiting forever.
WORKER_GROUP_START_TIMEOUT_S = "120"
# Train's controller polls its workers this often; each report waits for a poll (default 2 s,
# which made a 0.2 s epoch take 2 s)
HEALTH_CHECK_INTERVAL_S = "0.2"
# Checkpoints kept by the objective. A trial a scheduler stops is judged on epoch e while its
# Train run has already registered up to two more (the worker reports into a one-slot queue that
# the controller drains into a one-slot queue to the Tune trial actor, which Tune reads only after
# judging the last): the trial's best checkpoint up to e must outlive two better ones, or its
# leaderboard row and MLflow artifacts would have none to show (measured: 1 kept lost it).
KEEP_BEST = 3
# Controller failures are retried a few times, not endlessly (Ray's default is unlimited).
CONTROLLER_FAILURE_LIMIT = 3


def worker_resources(cfg: SweepConfig) -> dict[str, float]:
    res = cfg.resources
    out = {"CPU": res.cpus_per_worker, **res.custom}
    if res.gpus_per_worker:
        out["GPU"] = res.gpus_per_worker
    return out


def build_trainer(
    cfg: SweepConfig,
    *,
    name: str,
    storage_path: str,
    workers: Optional[int] = None,
    callbacks: Sequence = (),
    resume_from=None,
    verbose: bool = False,
    listeners: Sequence = (),
    fold_groups: int = 1,
):
    """`fold_groups`: under per-trial CV, train that many folds at once, each group of
    `workers` on its own share (`trainables.fold_groups`); the run has `fold_groups x workers`."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.v2.api.config import LoggingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from trainables.worker import train_loop_per_worker

    os.environ.setdefault("RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S", WORKER_GROUP_START_TIMEOUT_S)
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", HEALTH_CHECK_INTERVAL_S)
    # Train's print patch sends each print to its log and to stdout: every line twice
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    use_gpu = cfg.resources.gpus_per_worker > 0
    scaling = ScalingConfig(num_workers=(workers or cfg.resources.workers) * fold_groups, use_gpu=use_gpu, resources_per_worker=worker_resources(cfg))
    run_config = RunConfig(
        name=name,
        storage_path=storage_path,
        # the best checkpoints by the objective; Ray always keeps the latest too, for resuming
        checkpoint_config=CheckpointConfig(
            num_to_keep=KEEP_BEST, checkpoint_score_attribute=cfg.search.primary_metric, checkpoint_score_order=cfg.search.primary_mode
        ),
        failure_config=FailureConfig(max_failures=cfg.resources.max_failures, controller_failure_limit=CONTROLLER_FAILURE_LIMIT),
        callbacks=list(callbacks),
        logging_config=LoggingConfig(log_level="WARNING"),  # Ray Train logs every report at INFO
    )
    return TorchTrainer(
        train_loop_per_worker,
        # Train V2 refuses `resume_from_checkpoint`: the checkpoint to start from when the run has
        # none of its own travels to the workers instead (ray-project/ray#49454)
        train_loop_config={"cfg": cfg, "verbose": verbose, "listeners": list(listeners), "resume_from": resume_from, "fold_groups": fold_groups},
        scaling_config=scaling,
        run_config=run_config,
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
    )
