"""Faults a long sweep meets: a Train worker killed, a process killed while it writes a
checkpoint, the results disk filling up. Real Ray, real MLflow store (SQLite)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from mlflow import MlflowClient

from tests.conftest import tiny_config
from tests.fixtures.cli import RaysweepProcess, checkpoint_epochs, wait_for
from tests.fixtures.ray_nodes import _stat, cluster_processes

pytestmark = pytest.mark.slow


def tune_epochs(storage: Path, sweep: str, trial: str) -> list[int]:
    (result,) = (storage / sweep).glob(f"{trial}*/result.json")  # named by raysweep.sweep.trial.trial_dirname
    return [json.loads(line)["epoch"] for line in result.read_text().splitlines() if line.strip()]


def training_processes(proc: RaysweepProcess, title: bytes) -> list[int]:
    """Pids of the processes started by this raysweep process whose title (Ray's `ray::<actor>`)
    starts with `title`: `ray::RayTrainWorker` (a Train worker), `ray::ImplicitFunc` (an inline trial)."""
    sessions = {proc.proc.pid}
    pids = cluster_processes(proc.marker, sessions, proc.since)
    sessions |= {s[1] for s in map(_stat, pids) if s}
    found = []
    for pid in cluster_processes(proc.marker, sessions, proc.since):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(title):
                found.append(pid)
        except OSError:
            pass
    return found


def mlflow_runs(db: Path, experiment: str):
    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name(experiment)
    return client, client.search_runs([exp.experiment_id])


# the process that trains a one-worker trial: the Tune trial actor (the default, inline) or the
# Ray Train worker (`resources.inline: false`), which Tune, or Train, starts again
TRAINS_IN = {True: b"ray::ImplicitFunc", False: b"ray::RayTrainWorker"}  # Tune names a function trainable ImplicitFunc


@pytest.mark.parametrize("inline", [True, False], ids=["inline (default)", "train worker"])
def test_a_killed_train_worker_is_replaced_and_the_trial_resumes_from_its_checkpoint(tmp_path, inline):
    # enough epochs that the kill lands part-way: an inline epoch of this trial takes a few tenths
    # of a second, and the checkpoints are polled every half second
    epochs = 30
    resources = {"max_failures": 2} if inline else {"max_failures": 2, "inline": False}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(tiny_config(
        name="workerkill", data={"num_samples": 400}, train={"epochs": epochs, "batch_size": 16},
        resources=resources, search={"num_samples": 1, "scheduler": "none"}, tracking={"enabled": True},
    )))
    storage = tmp_path / "results"
    run = RaysweepProcess(["run", "sweep.yaml", "--storage", str(storage)], cwd=tmp_path, env={"MLFLOW_TRACKING_URI": ""})  # ./mlflow.db here
    try:
        wait_for(run.while_running(lambda: any(3 <= e < epochs - 10 for e in checkpoint_epochs(storage, "workerkill").values())), 300, "epoch 3 checkpointed")
        (victim,) = training_processes(run, TRAINS_IN[inline])
        os.kill(victim, signal.SIGKILL)
        assert run.wait(600) == 0, run.output()[-3000:]
    finally:
        if run.proc.poll() is None:
            run.kill()
    (trial,) = checkpoint_epochs(storage, "workerkill")
    assert tune_epochs(storage, "workerkill", trial) == list(range(1, epochs + 1))  # resumed, nothing repeated
    client, runs = mlflow_runs(tmp_path / "mlflow.db", "workerkill")
    trials = [r for r in runs if r.data.tags.get("raysweep.role") == "trial"]
    assert len(trials) == 1 and trials[0].info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(trials[0].info.run_id, "val/macro_f1")] == list(range(1, epochs + 1))


WRITER = """
import sys, torch
from trainables.checkpoint import save_state
save_state(sys.argv[1], {"epoch": 2, "weights": torch.randn(150_000_000)})
"""


def test_a_process_killed_while_writing_a_checkpoint_leaves_the_last_one_intact(tmp_path):
    from trainables.checkpoint import STATE_FILE, load_state, save_state

    good = {"epoch": 1, "weights": torch.arange(10.0)}
    save_state(tmp_path, good)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=Path(__file__).resolve().parents[2])
    partial = wait_for(lambda: next((p for p in tmp_path.glob(f".{STATE_FILE}.tmp-*") if p.stat().st_size > 1_000_000), None), 120, "the write to begin")
    writer.send_signal(signal.SIGKILL)
    writer.wait(30)
    assert partial.exists() and partial.stat().st_size < 150_000_000 * 4  # killed part-way
    state = load_state(tmp_path)  # the previous checkpoint, whole
    assert state["epoch"] == 1 and torch.equal(state["weights"], good["weights"])


def test_a_full_results_disk_fails_the_trial_clearly_and_resume_continues_after_space_is_freed(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], check=True)
    try:
        epochs = 30  # the disk fills long before the last epoch, however fast an epoch is
        (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(tiny_config(
            name="diskfull", data={"num_samples": 400}, train={"epochs": epochs, "batch_size": 16},
            resources={"max_failures": 1}, search={"num_samples": 1, "scheduler": "none"},
        )))
        storage = mount / "results"
        run = RaysweepProcess(["run", "sweep.yaml", "--storage", str(storage)], cwd=tmp_path, env={"MLFLOW_TRACKING_URI": ""})  # ./mlflow.db here
        try:
            wait_for(lambda: any(e >= 2 for e in checkpoint_epochs(storage, "diskfull").values()), 300, "epoch 2 checkpointed")
            filler = mount / "filler"
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
            try:  # fill the disk to the last byte: a MiB at a time, then smaller, down to one byte
                for size in (1 << 20, 1 << 14, 1 << 8, 1):
                    try:
                        while True:
                            os.write(fd, b"\0" * size)
                    except OSError:
                        pass
            finally:
                os.close(fd)
            code = run.wait(600)
        finally:
            if run.proc.poll() is None:
                run.kill()
        out = run.output()
        assert "No space left on device" in out
        (trial,) = checkpoint_epochs(storage, "diskfull")
        stopped_at = checkpoint_epochs(storage, "diskfull")[trial]
        assert stopped_at < epochs
        filler.unlink()  # space again: the sweep continues from its last good checkpoint
        resume = RaysweepProcess(["resume", "diskfull", "--storage", str(storage), "--retry-errored"], cwd=tmp_path)
        assert resume.wait(600) == 0, resume.output()[-3000:]
        assert checkpoint_epochs(storage, "diskfull")[trial] == epochs, resume.output()[-5000:]
        report = RaysweepProcess(["report", "diskfull", "--storage", str(storage), "--json"], cwd=tmp_path)
        assert report.wait(120) == 0
        (row,) = json.loads(report.output().strip().splitlines()[-1])["trials"]
        assert row["status"] == "TERMINATED" and row["epochs_done"] == epochs
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
