"""The experiment raysweep creates in a SQLite store (no server, no Ray)."""

from __future__ import annotations

from mlflow import MlflowClient

from raysweep.tracking.runs import experiment_id


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
