"""The experiment raysweep creates in a SQLite store (no server, no Ray)."""

from __future__ import annotations

from mlflow import MlflowClient

from raysweep.tracking.runs import OUTCOME_TAG, STRAY_OUTCOME, end_strays, experiment_id, fold_run, parent_run, trial_run


def test_a_new_experiment_opens_on_its_runs_in_the_ui(tmp_path):
    """MLflow 3's UI opens an experiment of no declared kind on its GenAI overview; one marked
    'custom_model_development' ("Machine learning") opens on its runs."""
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = experiment_id(client, "sweep", str(tmp_path / "artifacts"))
    assert client.get_experiment(exp).tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment_id(client, "sweep", None) == exp  # found, not created twice


def test_an_existing_experiment_keeps_the_kind_its_owner_chose(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("shared", tags={"mlflow.experimentKind": "genai_development"})
    client.delete_experiment(exp)
    assert experiment_id(client, "shared", None) == exp  # restored
    assert client.get_experiment(exp).tags["mlflow.experimentKind"] == "genai_development"
    assert client.get_experiment(exp).lifecycle_stage == "active"


def test_runs_of_trials_tune_does_not_know_end_killed_with_their_folds(tmp_path):
    """A trial a killed driver started after Tune's last snapshot, that no resumed trial
    continued, is no longer shown running at the sweep's end; Tune's own trials are left as they are."""
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = experiment_id(client, "sweep", None)
    parent, _ = parent_run(client, exp, "sweep-1")
    known, _ = trial_run(client, exp, "sweep-1", parent, "aaaa0001", "aaaa0001")
    stray, _ = trial_run(client, exp, "sweep-1", parent, "bbbb0002", "bbbb0002")
    fold, _ = fold_run(client, exp, "sweep-1", stray, 0, "bbbb0002 fold 0")
    other_sweep, _ = trial_run(client, exp, "sweep-2", None, "cccc0003", "cccc0003")
    assert end_strays(client, exp, "sweep-1", {"aaaa0001"}) == [stray]
    status = {r: client.get_run(r).info.status for r in (parent, known, stray, fold, other_sweep)}
    assert status == {parent: "RUNNING", known: "RUNNING", stray: "KILLED", fold: "KILLED", other_sweep: "RUNNING"}
    assert client.get_run(stray).data.tags[OUTCOME_TAG] == STRAY_OUTCOME
