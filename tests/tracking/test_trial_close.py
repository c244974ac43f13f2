"""A trial's run reads ended only once its artifacts are in.

A driver killed while it logged a trial's artifacts must leave the run open, so that the next
driver (`raysweep resume`) finishes it: CI once caught a run FINISHED with no artifacts at all,
its driver SIGKILLed between ending the run and logging the report. The kill is stood in for by
an artifact that cannot be made (a damaged predictions file), then mended before the next driver.
The run of `raysweep train` keeps the same order.
"""

import shutil

import pytest
from mlflow import MlflowClient

from raysweep.tracking.runs import parent_run, trial_run
from raysweep.config import load_sweep
from raysweep.tracking.store import TrackingTarget
from raysweep.tracking.sweep import MlflowCallback
from raysweep.tracking.train_run import open_train_run
from tests.conftest import tiny_config, write_yaml
from tests.tracking.trained import train_here
from trainables.checkpoint_files import PREDICTIONS_FILE, checkpoint_name

METRIC = "val/macro_f1"
TRIAL = "t0001"


@pytest.fixture
def ended_trial(tmp_path):
    """A trained 2-epoch trial's checkpoints where Ray Train keeps them, and its open MLflow run."""
    (tmp_path / "trained").mkdir()
    session = train_here(tiny_config(train={"epochs": 2}), tmp_path / "trained")
    train = tmp_path / "train"
    for epoch, kept in enumerate(session.checkpoints, start=1):
        shutil.copytree(kept, train / TRIAL / checkpoint_name(epoch))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("close", artifact_location=str(tmp_path / "artifacts"))
    parent, _ = parent_run(client, experiment, "sweep")
    run, _ = trial_run(client, experiment, "sweep", parent, TRIAL, "trial")
    return client, TrackingTarget(uri, experiment, parent, "sweep"), train, run


def driver(target, train):
    return MlflowCallback(target, train_storage=str(train), layout=None, metric=METRIC, mode="max", max_epoch=2, rule="asha")


def test_a_driver_stopped_while_logging_artifacts_leaves_the_run_open_and_the_next_one_ends_it_whole(ended_trial):
    client, target, train, run = ended_trial
    last = {"epoch": 2, METRIC: 0.5, "mlflow_run_id": run}
    tags = {"raysweep.outcome": "finished"}
    predictions = train / TRIAL / checkpoint_name(2) / PREDICTIONS_FILE
    whole = predictions.read_bytes()
    predictions.write_bytes(b"cut short")

    first = driver(target, train)
    first._logger()
    with pytest.raises(Exception):
        first._close_now(TRIAL, last, "FINISHED", tags)
    assert client.get_run(run).info.status == "RUNNING"

    predictions.write_bytes(whole)
    second = driver(target, train)
    second._logger()
    second._settle({TRIAL: (last, "FINISHED", tags)})
    ended = client.get_run(run)
    assert ended.info.status == "FINISHED" and ended.data.tags["raysweep.outcome"] == "finished"
    reports = {a.path for a in client.list_artifacts(run, "report")}
    assert reports == {"report/per_class_report.csv", "report/confusion_matrix.png", "report/learning_curves.png"}
    assert {a.path for a in client.list_artifacts(run, "checkpoint")} >= {f"checkpoint/{PREDICTIONS_FILE}"}
    assert [a.path for a in client.list_artifacts(run) if a.path == "config.yaml"] == ["config.yaml"]


REPORTS = {"report/per_class_report.csv", "report/confusion_matrix.png", "report/learning_curves.png"}


def test_raysweep_train_ends_its_run_only_once_its_artifacts_are_in(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = tiny_config(train={"epochs": 2}, tracking={"enabled": True, "uri": uri, "artifact_location": str(tmp_path / "artifacts")})
    run = open_train_run(load_sweep(write_yaml(tmp_path / "train.yaml", sweep)).config, "tiny-train")
    (tmp_path / "trained").mkdir()
    session = train_here(sweep, tmp_path / "trained", listeners=[run.listener()])
    client = MlflowClient(uri)
    trained = client.get_run(run.run_id)
    # trained to its end, every epoch logged by the trainer's listener: the command ends the run
    assert [m.step for m in client.get_metric_history(run.run_id, METRIC)] == [1, 2]
    assert trained.info.status == "RUNNING"

    checkpoint = session.checkpoints[-1]
    predictions = checkpoint / PREDICTIONS_FILE
    whole = predictions.read_bytes()
    predictions.write_bytes(b"cut short")
    with pytest.raises(Exception):
        run.finish(checkpoint, METRIC)
    assert client.get_run(run.run_id).info.status == "RUNNING"

    predictions.write_bytes(whole)
    run.finish(checkpoint, METRIC)
    assert client.get_run(run.run_id).info.status == "FINISHED"
    assert {a.path for a in client.list_artifacts(run.run_id, "report")} == REPORTS


def test_raysweep_train_whose_training_failed_is_ended_failed_by_its_logger(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = tiny_config(train={"epochs": 2}, optimizer={"lr": 1e30, "momentum": 0.0}, tracking={"enabled": True, "uri": uri, "artifact_location": str(tmp_path / "artifacts")})
    run = open_train_run(load_sweep(write_yaml(tmp_path / "train.yaml", sweep)).config, "tiny-train")
    (tmp_path / "trained").mkdir()
    train_here(sweep, tmp_path / "trained", listeners=[run.listener()])  # the loss diverges
    client = MlflowClient(uri)
    failed = client.get_run(run.run_id)
    assert failed.info.status == "FAILED" and "training loss became" in failed.data.tags["raysweep.error"]
    run.finish(None, METRIC)
    assert client.get_run(run.run_id).info.status == "FAILED"
