"""A sweep whose driver is SIGKILLed part-way, then `raysweep resume`d."""

import json
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import tiny_config
from tests.fixtures.cli import RaysweepProcess, checkpoint_epochs, wait_for

pytestmark = pytest.mark.slow

# Inline epochs of this sweep take hundredths of a second: enough of them that a kill, polled every
# 0.2 s, lands while one trial is part-way (8 were too few on CI: the sweep ended before the kill)
EPOCHS = 30


def checkpoint_dirs(storage: Path, sweep: str, trial: str) -> set[str]:
    return {p.name for p in (storage / sweep / "train" / trial).glob("checkpoint_*")}


def trained(storage: Path, sweep: str, trial: str) -> list[dict]:
    """When each epoch of the trial was trained, from its newest checkpoint. (Not from Tune's
    result.json: Tune re-downloads that from storage whenever a trial restarts, which drops the
    lines it had not synced yet, so it is no record of which run trained what.)"""
    metas = [json.loads(m.read_text()) for m in (storage / sweep / "train" / trial).glob("checkpoint_*/meta.json")]
    return max(metas, key=lambda m: m["epoch"])["trained"]


def lr_of(storage: Path, sweep: str, trial: str) -> float:
    """The trial's learning rate, from the configuration its checkpoints keep."""
    config = next((storage / sweep / "train" / trial).glob("checkpoint_*/trial_config.json"))
    return json.loads(config.read_text())["optimizer"]["lr"]


# Tune snapshots its trial list every 5 s (raysweep's setting); with an hour between snapshots,
# every trial started after the sweep's first moment is one `Tuner.restore` will not know of,
# and the resumed grid suggests it again as a new trial: that trial must continue the first one.
SNAPSHOTS = {"snapshot every 5 s": {}, "trials the snapshot missed": {"TUNE_GLOBAL_CHECKPOINT_S": "3600"}}
OWN_STORE = {"MLFLOW_TRACKING_URI": ""}  # ./mlflow.db of the test's folder, whatever the session set


@pytest.mark.parametrize("snapshots", list(SNAPSHOTS))
def test_killed_sweep_resumes_without_losing_or_repeating_work(tmp_path, snapshots):
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(tiny_config(
        name="killme",
        data={"num_samples": 400},
        optimizer={"lr": {"grid": [0.02, 0.05, 0.1, 0.2]}},
        train={"epochs": EPOCHS, "batch_size": 16},
        resources={"max_concurrent": 2},
        search={"algorithm": "grid"},
        tracking={"enabled": True},
    )))
    storage = tmp_path / "results"
    run = RaysweepProcess(["run", str(sweep_file), "--storage", str(storage)], cwd=tmp_path, env={**SNAPSHOTS[snapshots], **OWN_STORE})
    try:
        # kill once one trial has finished and another is part-way through, with epochs to go
        # (not one epoch short of the end: it could finish before the kill lands), and a third
        # trial, started after the first two (so after the sweep's first snapshot), has a
        # checkpoint: with an hour between snapshots that one is a stray whichever trial is part-way
        progress = wait_for(
            run.while_running(lambda: (lambda e: e if len(e) >= 3 and any(v == EPOCHS for v in e.values()) and any(2 <= v <= EPOCHS - 3 for v in e.values()) else None)(checkpoint_epochs(storage, "killme"))),
            timeout_s=400, what="one trial finished and one part-way", every_s=0.2,
        )
    finally:
        run.kill()
    before = checkpoint_epochs(storage, "killme")
    finished = [t for t, e in before.items() if e == EPOCHS]
    interrupted = [t for t, e in before.items() if e < EPOCHS]
    assert finished and interrupted, (progress, before)
    lrs = {t: lr_of(storage, "killme", t) for t in before}
    finished_dirs = {lrs[t]: checkpoint_dirs(storage, "killme", t) for t in finished}

    resumed_at = time.time()
    resume = RaysweepProcess(["resume", "killme", "--storage", str(storage)], cwd=tmp_path, env=OWN_STORE)
    assert resume.wait(600) == 0, resume.output()[-3000:]
    if snapshots == "trials the snapshot missed":
        assert "started after the killed driver's last snapshot" in resume.output()

    report = RaysweepProcess(["report", "killme", "--storage", str(storage), "--json"], cwd=tmp_path)
    assert report.wait(120) == 0
    payload = json.loads(report.output().strip().splitlines()[-1])
    ids = [t["trial_id"] for t in payload["trials"]]
    assert len(ids) == 4 and len(set(ids)) == 4
    assert all(t["status"] == "TERMINATED" and t["epochs_done"] == EPOCHS for t in payload["trials"]), payload["trials"]
    assert sorted(t["params"]["optimizer.lr"] for t in payload["trials"]) == [0.02, 0.05, 0.1, 0.2]
    # a trial is followed by its configuration: one Tune did not know of continues under a new id
    now = {t["params"]["optimizer.lr"]: t["trial_id"] for t in payload["trials"]}
    for t in finished:  # not trained again: no new checkpoint was written
        assert checkpoint_dirs(storage, "killme", now[lrs[t]]) == finished_dirs[lrs[t]]
    for t in interrupted:  # resumed from its newest checkpoint: no epoch trained twice, none from epoch 1
        record = trained(storage, "killme", now[lrs[t]])
        assert [e["epoch"] for e in record] == list(range(1, EPOCHS + 1)), (t, record)
        first_run = [e["epoch"] for e in record if e["at"] < resumed_at]
        assert first_run == list(range(1, before[t] + 1)), (t, before[t], record, resumed_at)
    # MLflow: one finished run per trial, named by the trial that ended it, each epoch once
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("killme").experiment_id], filter_string="tags.`raysweep.role` = 'trial'")
    assert sorted(r.data.tags["raysweep.trial_id"] for r in runs) == sorted(ids)
    for r in runs:
        assert r.info.status == "FINISHED", (r.data.tags, r.info.status)
        assert [m.step for m in client.get_metric_history(r.info.run_id, "val/macro_f1")] == list(range(1, EPOCHS + 1)), r.data.tags
