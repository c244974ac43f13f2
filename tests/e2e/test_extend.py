"""`raysweep extend`: a 4-trial quickstart sweep grown by 4 trials with a wider `optimizer.lr`,
after it finished and after its driver was SIGKILLed part-way. Read back with Tune's files
(`raysweep report`), the trials' checkpoints, MLflow's client and the searcher's Optuna study."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import pytest

from tests.fixtures.cli import RaysweepProcess, checkpoint_epochs, wait_for

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EPOCHS = 4
# the quickstart at smoke size; trials train in their Tune actor (no worker-group start-up per trial)
SMOKE = ["--set", f"train.epochs={EPOCHS}", "--set", "search.grace_period=2", "--set", "resources.inline=true"]
WIDER_LR = "optimizer.lr={loguniform: [0.001, 1.0]}"
OWN_STORE = {"MLFLOW_TRACKING_URI": ""}  # the store beside the sweep (./mlflow.db)


def raysweep(tmp_path: Path, *args: str) -> RaysweepProcess:
    return RaysweepProcess([*args, "--storage", str(tmp_path / "results")], cwd=tmp_path, env=OWN_STORE)


def report(tmp_path: Path, name: str) -> dict[str, dict]:
    proc = raysweep(tmp_path, "report", name, "--json")
    assert proc.wait(120) == 0, proc.output()[-2000:]
    return {t["trial_id"]: t for t in json.loads(proc.output().strip().splitlines()[-1])["trials"]}


def provenance(sweep_dir: Path) -> dict[str, tuple[set[str], list[dict]]]:
    """Per trial: its checkpoint folders and, from the newest, when each epoch was trained."""
    out = {}
    for trial in (sweep_dir / "train").iterdir():
        metas = [json.loads(m.read_text()) for m in trial.glob("checkpoint_*/meta.json")]
        if metas:
            out[trial.name] = ({p.name for p in trial.glob("checkpoint_*")}, max(metas, key=lambda m: m["epoch"])["trained"])
    return out


def newest_searcher(segment_dir: Path) -> dict:
    return pickle.loads(max(segment_dir.glob("searcher-state-*.pkl"), key=lambda p: p.name).read_bytes())


def extend(tmp_path: Path, name: str) -> str:
    proc = raysweep(tmp_path, "extend", name, "--num-samples", "4", "--set", WIDER_LR)
    assert proc.wait(900) == 0, proc.output()[-4000:]
    assert "the searcher starts from 4 earlier trial(s)" in proc.output(), proc.output()[-4000:]
    return proc.output()


def check_grown(tmp_path: Path, name: str, first: dict[str, dict], kept: dict, extended_at: float) -> None:
    """8 trials in the report, MLflow and the study; the first segment's `first` rows as they
    were, the trials in `kept` (their provenance before `extend`) not trained again."""
    sweep_dir = tmp_path / "results" / name
    after = report(tmp_path, name)
    assert len(after) == 8 and set(first) < set(after), (set(first), set(after))
    for trial, row in first.items():
        assert after[trial] == row, (row, after[trial])
    new = set(after) - set(first)
    assert all(after[t]["status"] == "TERMINATED" and 1e-3 <= after[t]["params"]["optimizer.lr"] <= 1.0 for t in new), after
    # every epoch of every trial trained once; the trials already whole not trained again
    now = provenance(sweep_dir)
    assert set(now) == set(after)
    for trial, (_, trained) in now.items():
        assert [e["epoch"] for e in trained] == list(range(1, len(trained) + 1)), (trial, trained)
    for trial, (dirs, trained) in kept.items():
        assert now[trial] == (dirs, trained), trial
        assert all(e["at"] < extended_at for e in trained), (trial, trained)

    # MLflow: one parent, its 8 trial runs, the extension recorded on it
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("quickstart")
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`raysweep.sweep_id` = '{name}'")
    [parent] = [r for r in runs if r.data.tags.get("raysweep.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("raysweep.role") == "trial"]
    assert sorted(r.data.tags["raysweep.trial_id"] for r in children) == sorted(after), [r.data.tags for r in children]
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id and r.info.status == "FINISHED" for r in children)
    assert parent.data.tags["raysweep.extensions"] == "1" and parent.info.status == "FINISHED"
    local = client.download_artifacts(parent.info.run_id, "extensions.json", str(tmp_path))
    [record] = json.loads(Path(local).read_text())
    assert record["num_trials"] == 4 and record["overrides"] == [WIDER_LR] and "optimizer.lr" in record["changed"], record

    # Optuna: the extension's study holds all 8, the first 4 as the first study ended them
    first_study = newest_searcher(sweep_dir)["study"]
    state = newest_searcher(sweep_dir / "extension-1")
    study = state["study"]
    assert len(study.trials) == 8 and set(state["carried"]) == set(first) and set(state["tune_trials"]) == new, state["carried"]
    for trial, number in state["carried"].items():
        carried, original = study.trials[number], first_study.trials[number]
        assert (carried.state, carried.values, carried.intermediate_values) == (original.state, original.values, original.intermediate_values)
    assert all(t.distributions["optimizer.lr"].low == 1e-3 for t in study.trials)


def run_quickstart(tmp_path: Path, name: str) -> RaysweepProcess:
    return raysweep(tmp_path, "run", str(REPO / "search_spaces" / "quickstart.yaml"), "--num-samples", "4", *SMOKE, "--name", name)


def test_a_finished_sweep_grows_by_four_trials_with_a_wider_lr(tmp_path):
    run = run_quickstart(tmp_path, "grown")
    assert run.wait(900) == 0, run.output()[-4000:]
    first, kept = report(tmp_path, "grown"), provenance(tmp_path / "results" / "grown")
    assert len(first) == 4 and set(kept) == set(first) and all(t["status"] == "TERMINATED" for t in first.values()), first
    extended_at = time.time()
    out = extend(tmp_path, "grown")
    assert "finishing" not in out
    check_grown(tmp_path, "grown", first, kept, extended_at)


def test_a_killed_sweep_is_finished_then_grown(tmp_path):
    run = run_quickstart(tmp_path, "killed")
    storage = tmp_path / "results"
    try:
        wait_for(run.while_running(lambda: any(v >= 2 for v in checkpoint_epochs(storage, "killed").values())), timeout_s=600, what="a trial part-way")
    finally:
        run.kill()
    whole = {t: p for t, p in provenance(storage / "killed").items() if len(p[1]) >= EPOCHS}  # those done before the kill
    extended_at = time.time()
    out = extend(tmp_path, "killed")
    assert "finishing its last part first" in out, out[-4000:]
    first = {t: row for t, row in report(tmp_path, "killed").items() if t in newest_searcher(storage / "killed")["tune_trials"]}
    assert len(first) == 4 and all(row["status"] == "TERMINATED" for row in first.values()), first
    check_grown(tmp_path, "killed", first, whole, extended_at)
