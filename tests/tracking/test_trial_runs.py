"""The sweep's run opener: one actor opens every trial's MLflow run, so trials import no MLflow.

A real local Ray cluster, a real SQLite store read back with MLflow's own client, and a real
trainer in a fresh Ray worker process standing in for the trial actor."""

import uuid

import pytest
import ray
from mlflow import MlflowClient

from raysweep.tracking.runs import FOLD_TAG, INTERRUPTED_TAG, PARENT_TAG, TRIAL_RUN_TAG, TRIAL_TAG, experiment_id, fold_runs_of, parent_run
from raysweep.tracking.store import TrackingTarget
from raysweep.tracking.trial_runs import start_opener, stop_opener
from tests.tracking.trained import train_one_trial

pytestmark = pytest.mark.ray


def tracking(tmp_path, sweep_id: str) -> tuple[MlflowClient, TrackingTarget]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = experiment_id(client, "s", str(tmp_path / "mlartifacts"))
    parent, _ = parent_run(client, exp, sweep_id)
    return client, TrackingTarget(uri=uri, experiment_id=exp, parent_run_id=parent, sweep_id=sweep_id)


def test_a_trial_gets_its_run_from_the_opener_and_imports_no_mlflow(ray_session, sweep_file, tmp_path):
    from tests.conftest import tiny_config

    client, target = tracking(tmp_path, "sweep-1")
    opener = start_opener(target)
    sweep_yaml = str(sweep_file(tiny_config(train={"epochs": 1})))
    # a worker process of its own (its environment differs from every other), as a new trial actor
    fresh = {"env_vars": {"RAYSWEEP_TEST_WORKER": uuid.uuid4().hex}}
    got = ray.get(ray.remote(train_one_trial).options(runtime_env=fresh).remote(sweep_yaml, str(tmp_path / "train"), target, opener))

    assert got["mlflow_imported"] == []
    assert got["run"] and got["reported"] == got["run"]
    run = client.get_run(got["run"])
    assert run.info.status == "RUNNING" and run.info.run_name == "trial_a lr=0.1"
    assert run.data.tags[TRIAL_TAG] == "trial_a" and run.data.tags[PARENT_TAG] == target.parent_run_id
    assert run.data.params["optimizer.lr"] == "0.1" and run.data.params["model.name"] == "tiny_cnn"

    stop_opener("sweep-1")  # the sweep's driver, once its trials have ended
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(opener.open.remote("trial_c", "trial_c", {}, 0), timeout=60)
    # the next sweep driven from this process under the same id (`raysweep extend` resumes the
    # sweep, then extends it) gets an opener of its own, not the one it killed
    again = start_opener(target)
    assert ray.get(again.open.remote("trial_a", "trial_a lr=0.1", {}, 0), timeout=60)[0] == got["run"]
    stop_opener("sweep-1")


def test_a_resumed_trial_continues_its_run_and_its_fold_runs_once(ray_session, tmp_path):
    client, target = tracking(tmp_path, "sweep-2")
    opener = start_opener(target)
    first, folds = ray.get(opener.open.remote("trial_b", "trial_b", {"optimizer.lr": "0.1"}, 2))
    assert folds == fold_runs_of(client, target.experiment_id, first)
    assert [client.get_run(folds[k]).data.tags[FOLD_TAG] for k in (0, 1)] == ["0", "1"]
    assert {client.get_run(r).data.tags[TRIAL_RUN_TAG] for r in folds.values()} == {first}
    # the sweep was stopped with Ctrl-C: the run reads interrupted until the trial continues
    client.set_tag(first, INTERRUPTED_TAG, "true")
    client.set_terminated(first, "KILLED")

    again, folds_again = ray.get(opener.open.remote("trial_b", "trial_b", {"optimizer.lr": "0.1", "loss.name": "ce"}, 2))
    assert (again, folds_again) == (first, folds)
    run = client.get_run(first)
    assert run.info.status == "RUNNING" and INTERRUPTED_TAG not in run.data.tags
    assert run.data.params == {"optimizer.lr": "0.1", "loss.name": "ce"}
    trial_runs = client.search_runs([target.experiment_id], filter_string=f"tags.`{TRIAL_TAG}` = 'trial_b'")
    assert [r.info.run_id for r in trial_runs] == [first]
    assert len(client.search_runs([target.experiment_id], filter_string="tags.`raysweep.role` = 'fold'")) == 2
    stop_opener("sweep-2")
