"""MLflow tracking of a sweep on the session's Ray instance, with a SQLite store."""

import pytest
from mlflow import MlflowClient

from raysweep.commands import load_checked
from raysweep.sweep.experiment import run_sweep
from tests.conftest import tiny_config

pytestmark = pytest.mark.ray


def test_one_parent_one_child_per_trial_with_metrics_params_and_artifacts(ray_session, sweep_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default store: ./mlflow.db and ./mlartifacts
    sweep = load_checked(sweep_file(tiny_config(
        name="tracked", optimizer={"lr": {"grid": [0.05, 1e30]}, "momentum": 0.0}, train={"epochs": 2},
        search={"algorithm": "grid"}, tracking={"enabled": True},
    )))
    run_sweep(sweep, storage=str(tmp_path / "results"))
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tracked")
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("raysweep.role") == "sweep"]
    children = {float(r.data.params["optimizer.lr"]): r for r in runs if r.data.tags.get("raysweep.role") == "trial"}
    assert set(children) == {0.05, 1e30}
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in children.values())
    assert parent.info.status == "FINISHED"
    assert parent.data.params["search.algorithm"] == "grid" and "space.optimizer.lr" in parent.data.params
    assert {"raysweep.config_hash", "raysweep.version", "raysweep.sweep_name"} <= set(parent.data.tags)
    parent_files = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"sweep.yaml", "leaderboard.csv"} <= parent_files

    good, bad = children[0.05], children[1e30]
    assert good.info.status == "FINISHED"
    history = client.get_metric_history(good.info.run_id, "val/macro_f1")
    assert sorted(m.step for m in history) == [1, 2]
    for key in ("train/loss", "val/loss", "val/accuracy", "lr", "epoch_time_s", "images_per_s", "val/f1/0"):
        assert key in good.data.metrics, key
    assert good.data.params["train.epochs"] == "2" and good.data.tags["raysweep.trial_id"]
    files = {a.path for a in client.list_artifacts(good.info.run_id, "report")} | {a.path for a in client.list_artifacts(good.info.run_id, "checkpoint")}
    assert {"report/confusion_matrix.png", "report/per_class_report.csv", "report/learning_curves.png", "checkpoint/state.pt"} <= files

    assert bad.info.status == "FAILED"  # the diverging trial, with its reason
    assert "training loss became" in bad.data.tags["raysweep.error"]


def test_raysweep_train_records_one_run_like_a_trial(ray_session, sweep_file, tmp_path, monkeypatch, capsys):
    from raysweep.cli import main as cli_main

    monkeypatch.chdir(tmp_path)
    # the default store here; an earlier test's `mlflow.set_tracking_uri` (logging a model) exports its own
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    space = sweep_file(tiny_config(name="trained", train={"epochs": 3}, loss={"name": "ce"}, tracking={"enabled": True}))
    assert cli_main(["train", str(space), "--storage", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("trained").experiment_id])
    assert f"MLflow: run {run.info.run_id} in experiment" in out
    assert run.info.status == "FINISHED"
    assert run.data.tags["raysweep.role"] == "train" and "mlflow.parentRunId" not in run.data.tags
    for key in ("val/macro_f1", "train/loss", "lr"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [1, 2, 3], key
    assert run.data.params["train.epochs"] == "3" and run.data.params["loss.name"] == "ce"
    assert "loss.gamma" not in run.data.params and "None" not in run.data.params.values()
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    files |= {a.path for d in ("report", "checkpoint") for a in client.list_artifacts(run.info.run_id, d)}
    assert {"config.yaml", "report/confusion_matrix.png", "report/learning_curves.png", "checkpoint/state.pt"} <= files


def test_every_trial_run_has_system_metric_series_sampled_while_it_trained(ray_session, sweep_file, tmp_path):
    """MLflow's system metrics (CPU, memory; GPU where there is one) for each trial's run, logged by
    the worker that trained it: a sample every interval, and one at the trial's end (the trials train ~2 s)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = load_checked(sweep_file(tiny_config(
        name="system-metrics", optimizer={"lr": {"grid": [0.05, 0.1]}}, train={"epochs": 3}, search={"algorithm": "grid"},
        data={"num_samples": 4000, "shape": [1, 16, 16]}, tracking={"enabled": True, "uri": uri, "artifact_location": str(tmp_path / "mlartifacts"),
                                             "log_models": False, "system_metrics": True, "system_metrics_interval_s": 0.25},
    )))
    run_sweep(sweep, storage=str(tmp_path / "results"))
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("system-metrics").experiment_id], "tags.`raysweep.role` = 'trial'")
    assert len(runs) == 2
    for run in runs:
        rid = run.info.run_id
        assert run.info.status == "FINISHED"
        cpu = client.get_metric_history(rid, "system/cpu_utilization_percentage")
        memory = client.get_metric_history(rid, "system/system_memory_usage_megabytes")
        assert len(cpu) >= 2 and len(memory) == len(cpu), (len(cpu), len(memory))
        assert sorted(m.step for m in cpu) == list(range(len(cpu)))  # one series, each sample once
        assert all(0 <= m.value <= 100 for m in cpu) and all(m.value > 0 for m in memory)
        # sampled while the trial trained: the samples lie between the run's start and end
        assert all(run.info.start_time - 1000 <= m.timestamp <= client.get_run(rid).info.end_time + 5000 for m in cpu)
        # the trainer's own metrics are untouched, each epoch once
        assert [m.step for m in client.get_metric_history(rid, "train/loss")] == [1, 2, 3]

