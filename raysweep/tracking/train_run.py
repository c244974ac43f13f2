"""The MLflow run of `raysweep train`: one run of its own (role `train`, no sweep above it) in
the experiment a sweep of the same file logs to, holding what a sweep's trial run holds.

The run is created on the driver, so its id is known before training; the trial logger
(`MlflowTrialLogger`, a listener of the trainer on rank 0) finds it by its tags, logs the
params and every epoch, and ends it FAILED when training fails. After training the driver
adds the final checkpoint, its config and its report files, as a sweep's driver does for a
trial, and then ends the run FINISHED.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from raysweep.config.schema import SweepConfig
from raysweep.tracking.store import TrackingTarget, artifact_root, redact_uri, tracking_uri


@dataclass(frozen=True)
class TrainRun:
    target: TrackingTarget
    run_id: str
    name: str

    def listener(self):
        from raysweep.tracking.trial_logger import MlflowTrialLogger

        return MlflowTrialLogger(self.target, self.name, self.name, ends_trained_run=False)

    def where(self) -> str:
        """Where to see the run: its page on a tracking server, else the store it is in."""
        uri = redact_uri(self.target.uri)
        if uri.startswith(("http://", "https://")):
            return f"{uri.rstrip('/')}/#/experiments/{self.target.experiment_id}/runs/{self.run_id}"
        return f"run {self.run_id} in experiment {self.target.experiment_id} of {uri}"

    def finish(self, checkpoint: Optional[Path], metric: str) -> None:
        """Log the checkpoint's files, its config as `config.yaml` and the confusion matrix,
        per-class report and learning curves made from it (the artifacts of a sweep's trial run),
        then end the run FINISHED: in this order, so that a run that reads ended has them all
        (a command killed in between leaves it RUNNING). A run the trial logger ended FAILED
        (the training diverged) stays so."""
        from mlflow import MlflowClient

        from raysweep.tracking.artifacts import log_trial_artifacts
        from raysweep.tracking.runs import is_open

        client = MlflowClient(self.target.uri)
        if checkpoint is not None:
            log_trial_artifacts(client, self.run_id, checkpoint, metric)
        if is_open(client, self.run_id):
            client.set_terminated(self.run_id, "FINISHED")

    def fail_if_open(self, error: str) -> None:
        """End the run FAILED when training died before the trial logger could (its workers
        never started, or were killed)."""
        from mlflow import MlflowClient

        from raysweep.tracking.runs import is_open

        client = MlflowClient(self.target.uri)
        if is_open(client, self.run_id):
            client.set_tag(self.run_id, "raysweep.error", error[:5000])
            client.set_terminated(self.run_id, "FAILED")


def open_train_run(cfg: SweepConfig, name: str) -> TrainRun:
    """The run `name` in the sweep's experiment (`tracking.experiment`, else the sweep's name)."""
    from mlflow import MlflowClient

    from raysweep.tracking.runs import experiment_id, trial_run

    uri = tracking_uri(cfg)
    client = MlflowClient(uri)
    exp = experiment_id(client, cfg.tracking.experiment or cfg.name, artifact_root(cfg, uri))
    run_id, _ = trial_run(client, exp, name, None, name, name)
    return TrainRun(TrackingTarget(uri=uri, experiment_id=exp, parent_run_id=None, sweep_id=name), run_id, name)
