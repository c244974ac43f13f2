"""A trial's MLflow run from its worker: a real trainer, a real SQLite store, no Ray.

In a sweep the worker only opens the run (params, its id in every report): the driver logs the
epochs Tune judged and ends the run. A pruned trial's Train worker group trains on until Ray's
fate-sharing reaches it; nothing it does may change the run. Alone (`raysweep train`) the worker
logs every epoch and closes the run itself."""

import pytest
from mlflow import MlflowClient

from raysweep.config import load_sweep
from raysweep.tracking.runs import INTERRUPTED_TAG, end_trial, experiment_id, parent_run
from raysweep.tracking.store import TrackingTarget
from raysweep.tracking.trial_logger import MlflowTrialLogger
from tests.conftest import tiny_config
from trainables.session import LocalSession
from trainables.trainer import Trainer


def trainer_metrics(run) -> dict:
    """The run's metrics but MLflow's system metrics (sampled on their own clock)."""
    return {k: v for k, v in run.data.metrics.items() if not k.startswith("system/")}


class DriverStopsAfter:
    """Stands in for the sweep's driver: after epoch `n` it ends the trial's run as its MLflow
    callback does when the scheduler stops the trial, while the trainer goes on."""

    def __init__(self, client, logger, n):
        self.client, self.logger, self.n = client, logger, n

    def start(self, trainer, start_epoch):
        pass

    def epoch(self, metrics):
        if metrics["epoch"] == self.n:
            end_trial(self.client, self.logger.run_id, [], "FINISHED", {"raysweep.stopped_at_epoch": str(self.n)})

    def finish(self, final, error=None):
        pass


class FateSharingKillsAt(DriverStopsAfter):
    """... and the worker group then dies at epoch `n + 1`, as Ray's fate-sharing kills it."""

    def epoch(self, metrics):
        super().epoch(metrics)
        if metrics["epoch"] == self.n + 1:
            raise KeyboardInterrupt("the worker group's actor was killed")


def tracked_trainer(sweep_file, tmp_path, epochs, listeners, **tracking):
    cfg = load_sweep(sweep_file(tiny_config(train={"epochs": epochs}, tracking={"enabled": False, **tracking}))).config
    return Trainer(cfg, LocalSession(tmp_path / "train"), listeners=listeners)


def target(tmp_path) -> tuple[MlflowClient, TrackingTarget]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = experiment_id(client, "s", str(tmp_path / "mlartifacts"))
    parent, _ = parent_run(client, exp, "sweep-1")
    return client, TrackingTarget(uri=uri, experiment_id=exp, parent_run_id=parent, sweep_id="sweep-1")


def test_in_a_sweep_the_worker_opens_the_run_with_params_and_logs_no_epoch(sweep_file, tmp_path):
    client, tracking = target(tmp_path)
    logger = MlflowTrialLogger(tracking, "trial_a", "trial_a", log_epochs=False)
    trainer = tracked_trainer(sweep_file, tmp_path, 3, [logger])
    trainer.fit()
    run = client.get_run(logger.run_id)
    assert trainer.report_extras["mlflow_run_id"] == logger.run_id
    assert run.data.params["optimizer.lr"] == "0.1"
    assert not trainer_metrics(run) and client.get_metric_history(logger.run_id, "val/macro_f1") == []
    assert run.info.status == "RUNNING"  # the driver ends it, as Tune judged the trial


def test_a_trial_left_running_logs_every_epoch_and_finishes(sweep_file, tmp_path):
    client, tracking = target(tmp_path)
    logger = MlflowTrialLogger(tracking, "trial_b", "trial_b")
    tracked_trainer(sweep_file, tmp_path, 3, [logger]).fit()
    assert client.get_run(logger.run_id).info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(logger.run_id, "val/macro_f1")] == [1, 2, 3]


def test_a_stopped_trial_whose_workers_are_then_killed_keeps_the_drivers_ending(sweep_file, tmp_path):
    client, tracking = target(tmp_path)
    logger = MlflowTrialLogger(tracking, "trial_c", "trial_c", log_epochs=False)
    with pytest.raises(KeyboardInterrupt):
        tracked_trainer(sweep_file, tmp_path, 3, [logger, FateSharingKillsAt(client, logger, 1)]).fit()
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED" and "raysweep.error" not in run.data.tags
    assert run.data.tags["raysweep.stopped_at_epoch"] == "1"


def test_a_resumed_trial_reopens_its_interrupted_run(sweep_file, tmp_path):
    client, tracking = target(tmp_path)
    first = MlflowTrialLogger(tracking, "trial_d", "trial_d", log_epochs=False)
    tracked_trainer(sweep_file, tmp_path, 1, [first]).fit()
    client.set_tag(first.run_id, INTERRUPTED_TAG, "true")
    client.set_terminated(first.run_id, "KILLED")  # as Ctrl-C leaves it
    again = MlflowTrialLogger(tracking, "trial_d", "trial_d", log_epochs=False)
    tracked_trainer(sweep_file, tmp_path, 1, [again]).fit()
    run = client.get_run(again.run_id)
    assert again.run_id == first.run_id
    assert run.info.status == "RUNNING" and INTERRUPTED_TAG not in run.data.tags


def test_system_metrics_are_sampled_when_asked_and_a_resumed_trial_continues_their_steps(sweep_file, tmp_path):
    client, tracking = target(tmp_path)
    for _ in range(2):  # the trial, then the same trial resumed by a new worker
        logger = MlflowTrialLogger(tracking, "trial_e", "trial_e", log_epochs=False)
        tracked_trainer(sweep_file, tmp_path, 1, [logger], system_metrics=True).fit()
    steps = [m.step for m in client.get_metric_history(logger.run_id, "system/cpu_utilization_percentage")]
    assert len(steps) >= 2 and sorted(steps) == list(range(len(steps)))  # continued, none written twice
    assert len(client.get_metric_history(logger.run_id, "system/system_memory_usage_percentage")) == len(steps)


@pytest.mark.parametrize("setting", [{"system_metrics": False}, {}], ids=["off", "default on CPU"])
def test_system_metrics_off_logs_none(sweep_file, tmp_path, setting):
    client, tracking = target(tmp_path)
    logger = MlflowTrialLogger(tracking, "trial_f", "trial_f")
    tracked_trainer(sweep_file, tmp_path, 2, [logger], **setting).fit()
    metrics = client.get_run(logger.run_id).data.metrics
    assert "val/macro_f1" in metrics and not [k for k in metrics if k.startswith("system/")]
