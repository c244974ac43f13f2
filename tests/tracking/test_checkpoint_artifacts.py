"""A trial's checkpoint logged to MLflow is stored once: hard-linked into a local artifact
store, uploaded where MLflow's store is elsewhere. Read back through MlflowClient."""

import os
from pathlib import Path

from mlflow import MlflowClient

from raysweep.tracking.artifacts import CHECKPOINT_ARTIFACTS, local_artifact_dir, log_checkpoint_files


def checkpoint(where: Path) -> Path:
    (where / "sub").mkdir(parents=True)
    (where / "state.pt").write_bytes(os.urandom(4096))
    (where / "meta.json").write_text('{"epoch": 3}')
    (where / "sub" / "extra.txt").write_text("x")
    return where


def test_a_checkpoint_in_a_local_artifact_store_is_linked_not_copied(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("e", artifact_location=str(tmp_path / "mlartifacts"))
    run = client.create_run(exp).info.run_id
    src = checkpoint(tmp_path / "ckpt")
    log_checkpoint_files(client, run, src)
    log_checkpoint_files(client, run, src)  # a retry after a partial attempt: no error, same files
    listed = sorted(a.path for a in client.list_artifacts(run, CHECKPOINT_ARTIFACTS))
    assert listed == [f"{CHECKPOINT_ARTIFACTS}/meta.json", f"{CHECKPOINT_ARTIFACTS}/state.pt", f"{CHECKPOINT_ARTIFACTS}/sub"]
    got = Path(client.download_artifacts(run, CHECKPOINT_ARTIFACTS, str(tmp_path / "down")))
    assert (got / "state.pt").read_bytes() == (src / "state.pt").read_bytes()
    assert (got / "sub" / "extra.txt").read_text() == "x"
    stored = local_artifact_dir(client.get_run(run).info.artifact_uri) / CHECKPOINT_ARTIFACTS / "state.pt"
    assert stored.stat().st_ino == (src / "state.pt").stat().st_ino  # one copy on disk
    # the run keeps its files when the trial's checkpoint is deleted (retention, cleanup)
    for p in sorted(src.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    assert stored.read_bytes() and client.list_artifacts(run, CHECKPOINT_ARTIFACTS)


def test_only_local_artifact_locations_are_linked():
    assert local_artifact_dir("/data/mlartifacts/1/abc/artifacts") == Path("/data/mlartifacts/1/abc/artifacts")
    assert local_artifact_dir("file:///data/ml%20artifacts/1") == Path("/data/ml artifacts/1")
    assert local_artifact_dir("mlflow-artifacts:/1/abc/artifacts") is None  # a server proxies them
    assert local_artifact_dir("s3://bucket/1/abc") is None
    assert local_artifact_dir("file://otherhost/share/1") is None
