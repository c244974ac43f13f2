"""Every record of a sweep tells one history: the quickstart (ASHA, MLflow) read back with
clients raysweep did not write, after a plain run, after SIGKILL + resume, after Ctrl-C + resume.

For every trial, the epochs and their objective values agree between Ray's
`ExperimentAnalysis` (Tune's result.json), the MLflow run's metric history (`MlflowClient`), the
Optuna study the searcher keeps (its stored state) and the trial's checkpoints, each epoch once,
up to the epoch Tune judged; the leaderboard's best value and epoch are theirs."""

from __future__ import annotations

import json
import math
import os
import pickle
import signal
from pathlib import Path

import pytest

from tests.fixtures.cli import RaysweepProcess, checkpoint_epochs, wait_for

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
METRIC = "val/macro_f1"
EPOCHS = 6
QUICKSTART = [str(REPO / "search_spaces" / "quickstart.yaml"), "--num-samples", "6", "--set", f"train.epochs={EPOCHS}", "--set", "search.grace_period=2"]


# the store beside the sweep (./mlflow.db), whatever an earlier test in this process set
OWN_STORE = {"MLFLOW_TRACKING_URI": ""}


def run_quickstart(tmp_path: Path, name: str) -> RaysweepProcess:
    return RaysweepProcess(["run", *QUICKSTART, "--name", name, "--storage", str(tmp_path / "results")], cwd=tmp_path, env=OWN_STORE)


def leaderboard(tmp_path: Path, name: str) -> dict[str, dict]:
    report = RaysweepProcess(["report", name, "--storage", str(tmp_path / "results"), "--json"], cwd=tmp_path)
    assert report.wait(120) == 0, report.output()[-2000:]
    return {t["trial_id"]: t for t in json.loads(report.output().strip().splitlines()[-1])["trials"]}


def tune_view(sweep_dir: Path) -> dict[str, tuple[str, dict[int, float]]]:
    """Per trial: (Tune status, objective by epoch) from Ray's ExperimentAnalysis."""
    from ray.tune import ExperimentAnalysis

    analysis = ExperimentAnalysis(str(sweep_dir))
    frames = analysis.trial_dataframes
    out = {}
    for trial in analysis.trials:
        frame = frames.get(trial.trial_id)
        epochs = [] if frame is None or frame.empty else [int(e) for e in frame["epoch"]]
        assert len(epochs) == len(set(epochs)), (trial.trial_id, "an epoch twice in result.json", epochs)
        values = {} if not epochs else dict(zip(epochs, map(float, frame[METRIC])))
        out[trial.trial_id] = (trial.status, values)
    return out


def mlflow_view(tmp_path: Path, sweep_id: str) -> tuple[dict, dict]:
    """(per trial id: its run, parent run) read with MLflow's own client."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("quickstart")
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`raysweep.sweep_id` = '{sweep_id}'")
    parent = next(r for r in runs if r.data.tags.get("raysweep.role") == "sweep")
    trials = {}
    for run in runs:
        if run.data.tags.get("raysweep.role") != "trial":
            continue
        history = client.get_metric_history(run.info.run_id, METRIC)
        steps = [m.step for m in history]
        assert len(steps) == len(set(steps)), (run.data.tags["raysweep.trial_id"], "a step twice in MLflow", steps)
        trials[run.data.tags["raysweep.trial_id"]] = {
            "run": run, "values": {m.step: m.value for m in history},
            "artifacts": [a.path for a in client.list_artifacts(run.info.run_id, "report")],
        }
    return trials, parent


def optuna_view(sweep_dir: Path) -> dict[str, object]:
    """Per Tune trial id, its Optuna trial, from the searcher state Tune stored."""
    # one file per driver session, named by its start (a resumed sweep has two; Tune's sync
    # rewrites both, so their times say nothing): the newest name is the searcher as it ended
    newest = max(sweep_dir.glob("searcher-state-*.pkl"), key=lambda p: p.name)
    state = pickle.loads(newest.read_bytes())
    study = state["study"]
    return {tid: study.trials[number] for tid, (number, _) in state["tune_trials"].items()}


def newest_checkpoint(sweep_dir: Path, trial_id: str) -> dict:
    metas = [json.loads(m.read_text()) for m in (sweep_dir / "train" / trial_id).glob("checkpoint_*/meta.json")]
    return max(metas, key=lambda m: m["epoch"]) if metas else {}


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=0, abs_tol=1e-9)


def assert_records_agree(tmp_path: Path, sweep_id: str, finished: bool = True) -> dict[str, dict]:
    import optuna

    sweep_dir = tmp_path / "results" / sweep_id
    tune = tune_view(sweep_dir)
    runs, parent = mlflow_view(tmp_path, sweep_id)
    studied = optuna_view(sweep_dir)
    board = leaderboard(tmp_path, sweep_id)
    assert set(tune) == set(runs) == set(studied) == set(board) and len(tune) == 6, (set(tune), set(runs), set(studied), set(board))
    stopped = 0
    for tid, (status, values) in tune.items():
        epochs = sorted(values)
        last = epochs[-1]
        assert status == "TERMINATED" and epochs == list(range(1, last + 1)), (tid, status, epochs)
        run, row, otrial = runs[tid], board[tid], studied[tid]
        # MLflow: the same epochs and values, the run ended as Tune judged it
        assert sorted(run["values"]) == epochs, (tid, "mlflow", sorted(run["values"]), epochs)
        assert all(close(run["values"][e], values[e]) for e in epochs), (tid, run["values"], values)
        tags = run["run"].data.tags
        assert run["run"].info.status == "FINISHED", (tid, run["run"].info.status)
        if last < EPOCHS:
            stopped += 1
            assert tags["raysweep.outcome"] == f"stopped (asha, epoch {last})" and tags["raysweep.stopped_at_epoch"] == str(last), (tid, tags)
            assert otrial.state == optuna.trial.TrialState.PRUNED, (tid, otrial.state)
        else:
            assert tags["raysweep.outcome"] == "finished", (tid, tags)
            assert otrial.state == optuna.trial.TrialState.COMPLETE, (tid, otrial.state)
            assert close(otrial.value, max(values.values())), (tid, otrial.value, values)
        assert "raysweep.interrupted" not in tags
        # Optuna: every judged epoch as an intermediate value, the last one too
        assert sorted(otrial.intermediate_values) == epochs, (tid, "optuna", sorted(otrial.intermediate_values), epochs)
        assert all(close(otrial.intermediate_values[e], values[e]) for e in epochs), (tid, otrial.intermediate_values, values)
        # the leaderboard: the best of these very values
        best_epoch = max(epochs, key=lambda e: values[e])
        assert row["epochs_done"] == last and close(row["metric"], values[best_epoch]) and row["best_epoch"] == best_epoch, (tid, row, values)
        assert row["mlflow_run_id"] == run["run"].info.run_id
        kept = sorted(json.loads(p.read_text())["epoch"] for p in (sweep_dir / "train" / tid).glob("checkpoint_*/meta.json"))
        assert row["checkpoint"] and json.loads(Path(row["checkpoint"], "meta.json").read_text())["epoch"] == best_epoch, (tid, row, kept)
        # the checkpoints: each epoch trained once, the judged ones among them with the same values
        newest = newest_checkpoint(sweep_dir, tid)
        trained = [t["epoch"] for t in newest["trained"]]
        assert trained == list(range(1, newest["epoch"] + 1)) and newest["epoch"] >= last, (tid, trained, last)
        assert all(close(h[METRIC], values[h["epoch"]]) for h in newest["history"] if h["epoch"] <= last), tid
        assert "report/learning_curves.png" in run["artifacts"], (tid, run["artifacts"])
    assert stopped >= 1, "ASHA stopped no trial: the test does not cover a stopped one"
    if finished:
        assert parent.info.status == "FINISHED" and "raysweep.interrupted" not in parent.data.tags
        best = max(board.values(), key=lambda r: r["metric"])
        assert close(parent.data.metrics[f"best/{METRIC}"], best["metric"])
        assert parent.data.tags["raysweep.best_trial"] == best["trial_id"]
    return board


SCORE_THE_MODEL = """
import json, sys
import mlflow, numpy as np, torch
from sklearn.datasets import load_digits
from sklearn.metrics import f1_score

uri, store, splits = sys.argv[1:]
mlflow.set_tracking_uri(store)
validation = np.load(splits)["assignment"][0] == 1
digits = load_digits()
raw, truth = digits.images[validation][:, None].astype("float32"), digits.target[validation]
model = mlflow.pytorch.load_model(uri).eval()
with torch.no_grad():
    by_torch = model(torch.from_numpy(raw)).argmax(1).numpy()
by_pyfunc = np.asarray(mlflow.pyfunc.load_model(uri).predict(raw)).argmax(1)
labels = np.array([int(c) for c in model.classes])
print(json.dumps([len(truth), f1_score(truth, labels[by_torch], average="macro"), f1_score(truth, labels[by_pyfunc], average="macro")]))
"""


def test_a_finished_sweep_tells_one_history_everywhere(tmp_path):
    import subprocess
    import sys

    run = run_quickstart(tmp_path, "plain")
    assert run.wait(900) == 0, run.output()[-4000:]
    board = assert_records_agree(tmp_path, "plain")
    # the best model, loaded in a fresh process from the parent run's link, scores the whole
    # validation split of raw digits in one batch as the leaderboard says
    _, parent = mlflow_view(tmp_path, "plain")
    best = max(board.values(), key=lambda r: r["metric"])
    assert parent.data.tags["raysweep.best_run_id"] == best["mlflow_run_id"]
    scored = subprocess.run(
        [sys.executable, "-c", SCORE_THE_MODEL, parent.data.tags["raysweep.best_model_uri"], f"sqlite:///{tmp_path / 'mlflow.db'}", str(Path(best["checkpoint"], "splits.npz"))],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert scored.returncode == 0, scored.stderr[-3000:]
    n, by_torch, by_pyfunc = json.loads(scored.stdout.strip().splitlines()[-1])
    assert n > 400 and close(by_torch, best["metric"]) and close(by_pyfunc, best["metric"]), (n, by_torch, by_pyfunc, best)
    # reading the table back needs neither torch nor Ray
    light = subprocess.run(
        [sys.executable, "-c", "import json, sys; from raysweep.cli import main; main(['report', 'plain', '--storage', sys.argv[1]]); "
         "print(json.dumps(sorted(m for m in ('torch', 'timm', 'ray', 'mlflow') if m in sys.modules)))", str(tmp_path / "results")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert light.returncode == 0 and json.loads(light.stdout.strip().splitlines()[-1]) == [], (light.stdout[-2000:], light.stderr[-2000:])


def test_after_sigkill_and_resume_the_records_still_agree(tmp_path):
    run = run_quickstart(tmp_path, "killed")
    storage = tmp_path / "results"
    try:
        wait_for(run.while_running(lambda: (lambda e: len(e) >= 2 and any(v >= 2 for v in e.values()))(checkpoint_epochs(storage, "killed"))),
                 timeout_s=600, what="two trials with checkpoints")
    finally:
        run.kill()
    resume = RaysweepProcess(["resume", "killed", "--storage", str(storage)], cwd=tmp_path, env=OWN_STORE)
    assert resume.wait(900) == 0, resume.output()[-4000:]
    assert_records_agree(tmp_path, "killed")


def test_ctrl_c_exits_130_marks_runs_interrupted_and_resume_completes_them(tmp_path):
    from mlflow import MlflowClient

    run = run_quickstart(tmp_path, "stopped")
    storage = tmp_path / "results"
    wait_for(run.while_running(lambda: any(v >= 2 for v in checkpoint_epochs(storage, "stopped").values())), timeout_s=600, what="a trial part-way")
    os.killpg(run.proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole foreground group
    code = run.wait(300)
    out = run.output()
    assert code == 130, out[-4000:]
    assert "raysweep resume stopped" in out and "Tuner.restore" not in out, out[-4000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("quickstart")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.`raysweep.sweep_id` = 'stopped'")
    assert not [r for r in runs if r.info.status == "RUNNING"], [(r.data.tags.get("raysweep.role"), r.info.status) for r in runs]
    interrupted = [r for r in runs if r.data.tags.get("raysweep.interrupted") == "true" and r.data.tags.get("raysweep.role") == "trial"]
    assert interrupted and all(r.info.status == "KILLED" for r in interrupted)
    parent = next(r for r in runs if r.data.tags.get("raysweep.role") == "sweep")
    assert parent.data.tags.get("raysweep.interrupted") == "true" and "raysweep.best_model_uri" not in parent.data.tags
    assert not client.search_logged_models([exp.experiment_id]), "a model was logged for an unfinished sweep"
    words = {t["outcome"] for t in leaderboard(tmp_path, "stopped").values()}
    assert "interrupted" in words and "running" not in words, words

    resume = RaysweepProcess(["resume", "stopped", "--storage", str(storage)], cwd=tmp_path, env=OWN_STORE)
    assert resume.wait(900) == 0, resume.output()[-4000:]
    assert_records_agree(tmp_path, "stopped")
