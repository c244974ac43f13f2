"""The `resources`, `search` and `tracking` sections: how a sweep runs.

None of these can be searched.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from raysweep.config.base import FIXED, Section

Mode = Literal["max", "min"]


def gpu_share_problem(workers: int, gpus_per_worker: float) -> Optional[str]:
    """Why `workers` x `gpus_per_worker` cannot run, or None. Ray schedules a fraction of a GPU
    (several one-worker trials share one), but the DDP workers of one trial holding fractions
    would share one physical GPU, and NCCL refuses two ranks on one device
    (ray-project/ray#48012): refused before any trial starts."""
    if gpus_per_worker > 1 and not float(gpus_per_worker).is_integer():
        return f"must be a fraction below 1 or a whole number (Ray's rule), got {gpus_per_worker:g}"
    if workers > 1 and 0 < gpus_per_worker < 1:
        return (
            f"{gpus_per_worker:g} with workers: {workers} would put DDP workers on one GPU, which NCCL refuses "
            "(ray-project/ray#48012); set gpus_per_worker: 1, or workers: 1 to pack one-worker trials onto a GPU"
        )
    return None


class ResourcesConfig(Section):
    model_config = FIXED

    workers: int = Field(1, ge=1, description="DDP workers per trial")
    cpus_per_worker: float = Field(1.0, gt=0)
    gpus_per_worker: float = Field(
        0.0, ge=0, description="GPUs per worker; a fraction (0.25) packs one-worker trials onto one GPU, DDP workers need whole GPUs"
    )
    custom: dict[str, float] = Field(default_factory=dict, description="custom Ray resources per worker")
    max_failures: int = Field(2, ge=-1, description="worker-group restarts from the last checkpoint per trial (-1: unlimited)")
    max_concurrent: Optional[int] = Field(None, ge=1, description="cap on trials at once (default: what the cluster fits)")
    inline: Optional[bool] = Field(
        None,
        description="train a one-worker trial in its Tune trial actor, without a Ray Train worker group "
        "(default: yes for workers: 1, seconds less per trial, unless per-trial CV folds train at once; Tune retries it "
        "max_failures times from its last checkpoint); false: a Ray Train run even for one worker; true needs workers: 1",
    )

    @model_validator(mode="after")
    def _inline_one_worker(self):
        if self.inline and self.workers != 1:
            raise ValueError(f"inline: needs workers: 1 (an inline trial has no worker group), got workers: {self.workers}")
        return self  # unset, it is decided with the rest of the sweep (`SweepConfig._trial_kind`)

    @model_validator(mode="after")
    def _whole_gpus_for_ddp(self):
        problem = gpu_share_problem(self.workers, self.gpus_per_worker)
        if problem:
            raise ValueError(f"gpus_per_worker: {problem}")
        return self


class CVConfig(Section):
    model_config = FIXED

    mode: Literal["per_trial", "fold_as_trial"] = Field("per_trial", description="per_trial: every trial trains all folds; fold_as_trial: the fold is a grid axis")
    parallel: Literal["auto", True, False] = Field(
        "auto",
        description="per_trial: train the folds at once, each on its own worker(s) (true), in lockstep in one worker group (false), or at once where a trial's folds fit the cluster (auto)",
    )


class SearchConfig(Section):
    model_config = FIXED

    algorithm: Literal["optuna", "grid", "random"] = Field("optuna", description="optuna (sampler below), grid (every cell of the grid domains) or random")
    sampler: str = Field("tpe", description="Optuna sampler: tpe, cmaes, random, qmc, gp, nsga2")
    num_samples: Optional[int] = Field(None, ge=1, description="trials (grid: repetitions of the grid; default 1 for grid, 10 otherwise)")
    metric: Union[str, list[str]] = Field("val/macro_f1")
    mode: Union[Mode, list[Mode]] = Field("max")
    seed: int = Field(0)
    scheduler: Optional[str] = Field(None, description="asha, hyperband, median or none (default: asha for optuna, none otherwise); with several metrics asha (multi-objective ASHA) or none")
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(3.0, gt=1)
    max_t: Optional[int] = Field(None, ge=1, description="default: train.epochs")
    time_budget_s: Optional[float] = Field(None, gt=0)
    cv: Optional[CVConfig] = None
    cases: Optional[list[dict[str, Any]]] = Field(
        None,
        description="tied grid axes: a list of rows, each setting the same dotted keys "
        "({model.name: ..., train.batch_size: ...}); the sweep runs exactly these combinations, crossed with the other grids",
    )

    @model_validator(mode="after")
    def _objectives(self):
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        modes = self.mode if isinstance(self.mode, list) else [self.mode] * len(metrics)
        if len(modes) != len(metrics):
            raise ValueError(f"mode: needs one mode per metric ({len(metrics)}), got {len(modes)}")
        return self

    @property
    def metrics(self) -> list[str]:
        return self.metric if isinstance(self.metric, list) else [self.metric]

    @property
    def modes(self) -> list[str]:
        return self.mode if isinstance(self.mode, list) else [self.mode] * len(self.metrics)

    @property
    def primary_metric(self) -> str:
        return self.metrics[0]

    @property
    def primary_mode(self) -> str:
        return self.modes[0]


class TrackingConfig(Section):
    model_config = FIXED

    enabled: bool = Field(True)
    uri: Optional[str] = Field(None, description="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here)")
    experiment: Optional[str] = Field(None, description="MLflow experiment (default: the sweep name)")
    artifact_location: Optional[str] = Field(None, description="artifact root of a new experiment (default: ./mlartifacts)")
    log_models: bool = Field(True, description="log the best trial's model with mlflow.pytorch")
    system_metrics: Optional[bool] = Field(
        None, description="log CPU, memory and GPU use to each trial's run while it trains (MLflow's system metrics); "
        "default: where trials have a GPU (on CPU they crowd the objective off MLflow's run comparison)")
    system_metrics_interval_s: float = Field(5.0, gt=0, description="seconds between system-metric samples")

    @field_validator("uri")
    @classmethod
    def _uri(cls, v):
        if v is not None and v.startswith("file:"):
            raise ValueError("MLflow 3 refuses the plain file store; use sqlite:///path.db or http(s)://server")
        return v
