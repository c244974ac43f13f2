"""Sweeps tracked to a real `mlflow server` (SQLite store, proxied artifacts), read back
through `MlflowClient`: one parent run per sweep and one child per trial, every epoch's metrics
exactly once, the artifacts of trials and sweep; after the driver is SIGKILLed and the sweep
resumed; and across a server outage part-way through a sweep."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import write_yaml
from tests.fixtures.cli import RaysweepProcess, wait_for
from tests.fixtures.mlflow_server import mlflow_server  # noqa: F401  (fixture)
from tests.tracking.conftest import EPOCHS, LRS, grid_sweep

pytestmark = pytest.mark.slow

PER_EPOCH = ("val/macro_f1", "train/loss")
# The subprocess sweeps start a Ray instance of their own (RAY_ADDRESS empty: never the session's).
# Token auth is fixed from the process start: a new local instance turning it on at runtime
# (RAY_AUTH_MODE unset) was seen, on this busy machine, to start a GCS its own driver could not
# authenticate to ("InvalidAuthToken ... RAY_AUTH_MODE is currently 'disabled'").
OWN_RAY = {"RAY_ADDRESS": "", "RAY_AUTH_MODE": "token"}


def sweep_runs(client, experiment_id: str, sweep_id: str):
    """(the parent runs, the trial runs) of one sweep, found by raysweep's tags."""
    parents = client.search_runs([experiment_id], f"tags.`raysweep.sweep_id` = '{sweep_id}' and tags.`raysweep.role` = 'sweep'")
    children = client.search_runs([experiment_id], f"tags.`raysweep.sweep_id` = '{sweep_id}' and tags.`raysweep.role` = 'trial'")
    return parents, children


def steps(client, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def artifact_paths(client, run_id: str, path: str | None = None) -> set[str]:
    return {f.path for f in client.list_artifacts(run_id, path)}


def assert_every_epoch_once(client, children, epochs: int) -> None:
    for run in children:
        for key in PER_EPOCH:
            assert steps(client, run.info.run_id, key) == list(range(1, epochs + 1)), (run.info.run_name, key)


def result_epochs(storage: Path, sweep: str) -> dict[str, int]:
    """Per Tune trial directory, the last epoch the trial reported (from its result.json)."""
    out = {}
    for result in (storage / sweep).glob("*/result.json"):  # the trial folders (raysweep.sweep.trial.trial_dirname)
        lines = [json.loads(line) for line in result.read_text().splitlines() if line.strip()]
        out[result.parent.name] = max((line.get("epoch", 0) for line in lines), default=0)
    return out


# -- a finished sweep ------------------------------------------------------------------------


def test_a_sweep_has_one_parent_and_a_finished_child_per_trial_with_every_epoch(tracked_sweep):
    from mlflow import MlflowClient

    client = MlflowClient(tracked_sweep.server.uri)
    parents, children = sweep_runs(client, tracked_sweep.experiment_id, tracked_sweep.sweep_id)
    assert len(parents) == 1
    parent = parents[0].info.run_id
    assert parents[0].info.status == "FINISHED"
    assert len(children) == 3
    assert all(c.data.tags["mlflow.parentRunId"] == parent for c in children)
    # every run of the experiment is the sweep's parent or one of its trials: nothing extra
    assert {r.info.run_id for r in client.search_runs([tracked_sweep.experiment_id])} == {parent, *(c.info.run_id for c in children)}
    assert sorted(c.data.tags["raysweep.trial_id"] for c in children) == sorted(tracked_sweep.trial_ids)
    assert [c.info.status for c in children] == ["FINISHED"] * 3
    assert_every_epoch_once(client, children, EPOCHS)
    # the resolved config as flat dotted params, the swept value differing per trial
    assert sorted(float(c.data.params["optimizer.lr"]) for c in children) == LRS
    assert all(c.data.params["train.epochs"] == str(EPOCHS) and c.data.params["model.name"] == "tiny_cnn" for c in children)


def test_trials_and_sweep_carry_their_artifacts_and_the_best_model(tracked_sweep):
    from mlflow import MlflowClient

    client = MlflowClient(tracked_sweep.server.uri)
    parents, children = sweep_runs(client, tracked_sweep.experiment_id, tracked_sweep.sweep_id)
    for child in children:
        run = child.info.run_id
        assert "checkpoint/state.pt" in artifact_paths(client, run, "checkpoint"), child.info.run_name
        assert "report/confusion_matrix.png" in artifact_paths(client, run, "report"), child.info.run_name
        assert "config.yaml" in artifact_paths(client, run), child.info.run_name
        # the config as logged is the trial's: it re-runs with `raysweep train`
        config = client.download_artifacts(run, "config.yaml")
        assert f"lr: {child.data.params['optimizer.lr']}" in Path(config).read_text()
    parent = parents[0]
    top = artifact_paths(client, parent.info.run_id)
    assert {"sweep.yaml", "leaderboard.csv", "search"} <= top
    plots = artifact_paths(client, parent.info.run_id, "search")
    assert any(p.endswith(".png") for p in plots) and any(p.endswith(".html") for p in plots), plots
    leaderboard = Path(client.download_artifacts(parent.info.run_id, "leaderboard.csv")).read_text().splitlines()
    assert len(leaderboard) == 1 + 3
    # MLflow 3 logs the best trial's model as a LoggedModel, from the best trial's run
    best_run = parent.data.tags["raysweep.best_run_id"]
    assert best_run in {c.info.run_id for c in children}
    models = client.search_logged_models(experiment_ids=[tracked_sweep.experiment_id])
    assert [m.source_run_id for m in models] == [best_run]
    assert models[0].name == "model"


# -- a killed driver, resumed ----------------------------------------------------------------

KILL_EPOCHS = 30  # an inline epoch takes tenths of a second: the kill must land part-way


def test_a_killed_and_resumed_sweep_keeps_one_run_per_trial_and_each_step_once(tracked_sweep, tmp_path):
    from mlflow import MlflowClient

    server = tracked_sweep.server  # a sweep of its own (its own experiment) on the shared server
    client = MlflowClient(server.uri)
    path = write_yaml(tmp_path / "sweep.yaml", grid_sweep("mlflow-kill", server.uri, epochs=KILL_EPOCHS, data={"num_samples": 400}))
    storage = tmp_path / "results"
    run = RaysweepProcess(["run", str(path), "--storage", str(storage)], cwd=tmp_path, env=OWN_RAY)
    try:
        # part-way: a trial has reported two epochs, and not every trial has finished
        def part_way():
            epochs = result_epochs(storage, "mlflow-kill")
            all_done = len(epochs) == 3 and min(epochs.values()) == KILL_EPOCHS
            return epochs if epochs and max(epochs.values()) >= 2 and not all_done else None

        progress = wait_for(run.while_running(part_way), timeout_s=240, what="a trial two epochs in", every_s=0.2)
    finally:
        run.kill()  # the driver's whole session, then whatever Ray processes it left
    assert min(progress.values()) < KILL_EPOCHS or len(progress) < 3, progress

    experiment = client.get_experiment_by_name("mlflow-kill").experiment_id
    _, before = sweep_runs(client, experiment, "mlflow-kill")
    logged_before = {c.data.tags["raysweep.trial_id"]: steps(client, c.info.run_id, "train/loss") for c in before}
    assert any(logged_before.values()), (progress, logged_before)  # some epochs were logged before the kill

    resume = RaysweepProcess(["resume", "mlflow-kill", "--storage", str(storage)], cwd=tmp_path, env=OWN_RAY)
    assert resume.wait(420) == 0, resume.output()[-4000:]

    parents, children = sweep_runs(client, experiment, "mlflow-kill")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    trial_ids = [c.data.tags["raysweep.trial_id"] for c in children]
    assert len(children) == 3 and len(set(trial_ids)) == 3, trial_ids
    assert set(logged_before) <= set(trial_ids)  # the runs made before the kill were continued
    assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children)
    assert [c.info.status for c in children] == ["FINISHED"] * 3
    assert_every_epoch_once(client, children, KILL_EPOCHS)


# -- a server outage part-way ----------------------------------------------------------------

# Epochs take ~0.2-0.4 s here (mostly Ray Train's report round trip), so 100 keep training going
# well past the 15 s outage that starts at the first logged epoch.
OUTAGE_EPOCHS = 100
OUTAGE_S = 15


def test_logging_survives_a_server_outage_and_loses_no_epoch(mlflow_server, tmp_path):  # noqa: F811
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server.uri)
    path = write_yaml(tmp_path / "sweep.yaml", grid_sweep("mlflow-outage", mlflow_server.uri, epochs=OUTAGE_EPOCHS, lrs=[0.05, 0.2]))
    storage = tmp_path / "results"
    run = RaysweepProcess(["run", str(path), "--storage", str(storage)], cwd=tmp_path, env=OWN_RAY)
    try:
        def first_epochs_logged():
            exp = client.get_experiment_by_name("mlflow-outage")
            if exp is None:
                return None
            _, children = sweep_runs(client, exp.experiment_id, "mlflow-outage")
            return exp.experiment_id if any(steps(client, c.info.run_id, "train/loss") for c in children) else None

        experiment = wait_for(run.while_running(first_epochs_logged), timeout_s=240, what="the first epochs in MLflow", every_s=0.5)
        mlflow_server.stop()
        down_at = result_epochs(storage, "mlflow-outage")
        time.sleep(OUTAGE_S)
        during = result_epochs(storage, "mlflow-outage")
        mlflow_server.start()
        code = run.wait(420)
    finally:
        run.kill()
    assert code == 0, run.output()[-4000:]
    # the workers' logging did meet the outage, and said so (in the sweep's log: Ray forwards what the
    # workers print, and `raysweep run` keeps that off the terminal)
    assert "unreachable" in run.output() + (storage / "mlflow-outage" / "logs" / "driver.log").read_text()
    # the outage fell inside the training, and training went on meanwhile
    assert min(down_at.values()) < OUTAGE_EPOCHS, down_at
    assert sum(during.values()) > sum(down_at.values()), (down_at, during)

    parents, children = sweep_runs(client, experiment, "mlflow-outage")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 2
    assert [c.info.status for c in children] == ["FINISHED"] * 2
    assert_every_epoch_once(client, children, OUTAGE_EPOCHS)
    assert all("checkpoint/state.pt" in artifact_paths(client, c.info.run_id, "checkpoint") for c in children)
