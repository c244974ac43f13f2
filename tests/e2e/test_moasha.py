"""A two-objective sweep with ASHA (multi-objective ASHA, `raysweep.search.moasha`) through the
CLI, its driver SIGKILLed part-way and resumed: trials are stopped at rungs, every stop is
explained by Pareto rank at that rung (recomputed here from the values the trials reported to
Tune), the stops made before the kill stand, Optuna's study holds them as PRUNED, the MLflow
parent run has the Pareto front, and `raysweep report --json` marks the same front."""

import csv
import io
import json
import pickle
from pathlib import Path

import optuna
import pytest

from raysweep.search.moasha import MoashaRungs
from raysweep.search.pareto import dominates, minimized
from tests.conftest import REPO
from tests.fixtures.cli import RaysweepProcess, checkpoint_epochs, wait_for

pytestmark = pytest.mark.slow

NAME = "quickstart_moasha"
METRICS, MODES = ["val/macro_f1", "val/loss"], ["max", "min"]
EPOCHS, TRIALS, RATE = 4, 6, 2
SMOKE = [
    "--set", f"train.epochs={EPOCHS}", "--set", "search.grace_period=1", "--set", f"search.reduction_factor={RATE}",
    "--set", f"search.num_samples={TRIALS}", "--set", "resources.inline=true",
    "--set", "resources.max_concurrent=1",  # one at a time: trials reach each rung in their Optuna order
]
OWN_STORE = {"MLFLOW_TRACKING_URI": ""}  # the store beside the sweep (./mlflow.db)


def raysweep(tmp_path: Path, *args: str) -> RaysweepProcess:
    return RaysweepProcess([*args, "--storage", str(tmp_path / "results")], cwd=tmp_path, env=OWN_STORE)


def newest_searcher(sweep_dir: Path) -> dict:
    """The searcher's state in Tune's newest snapshot (what a resume restores)."""
    files = sorted(sweep_dir.glob("searcher-state-*.pkl"), key=lambda p: p.name)
    try:
        return pickle.loads(files[-1].read_bytes()) if files else {"stopped_at": {}}
    except (EOFError, pickle.UnpicklingError):  # Tune is writing it
        return {"stopped_at": {}}


def reported(sweep_dir: Path) -> dict[str, dict[int, tuple[float, float]]]:
    """Per trial, the objectives it reported to Tune at each epoch (the last report of an epoch).
    A trial that took over a killed trial's checkpoints (`raysweep.sweep.strays`) reported its
    first epochs under that trial's id: they come from the checkpoint's history."""
    from ray.tune import ExperimentAnalysis

    from raysweep.sweep.checkpoints import trial_history

    def objectives(result) -> tuple[float, float]:
        return float(result[METRICS[0]]), float(result[METRICS[1]])

    frames = ExperimentAnalysis(str(sweep_dir)).trial_dataframes
    out = {}
    for t, df in frames.items():
        out[t] = {int(h["epoch"]): objectives(h) for h in trial_history(str(sweep_dir / "train"), t)}
        out[t].update({int(r["epoch"]): objectives(r) for _, r in df.iterrows()})
    return out


def check_stops_are_pareto_ranks(state: dict, values: dict[str, dict[int, tuple]]) -> None:
    """Each trial's stop, replayed rung by rung in the order trials ran, is MOASHA's decision on
    the reported values; and each stopped trial was dominated at its rung by an earlier trial,
    or its rung's first front held more trials than the rung keeps (a cut by crowding)."""
    numbers, stopped_at = state["tune_trials"], state["stopped_at"]
    order = sorted(numbers, key=lambda t: numbers[t][0])
    replay = MoashaRungs(MODES, [1, 2], RATE)
    replayed = {}
    for trial_id in order:
        for epoch in sorted(values[trial_id]):
            if epoch < EPOCHS and not replay.judge(trial_id, epoch, values[trial_id][epoch]):
                replayed[trial_id] = epoch
                break
    assert replayed == stopped_at, (replayed, stopped_at)
    for trial_id, rung in stopped_at.items():
        here = order[: order.index(trial_id) + 1]
        points = {t: minimized([values[t][rung]], MODES)[0] for t in here if rung in values[t] and (t not in stopped_at or stopped_at[t] >= rung)}
        dominated = any(dominates(points[t], points[trial_id]) for t in points if t != trial_id)
        front = [t for t in points if not any(dominates(points[o], points[t]) for o in points)]
        assert dominated or len(front) > max(1, len(points) // RATE), (trial_id, rung, points)


def test_a_killed_and_resumed_two_objective_asha_sweep_stops_by_pareto_rank(tmp_path):
    storage, sweep_dir = tmp_path / "results", tmp_path / "results" / NAME
    run = raysweep(tmp_path, "run", str(REPO / "search_spaces" / f"{NAME}.yaml"), *SMOKE)
    try:
        # killed once a snapshot holds a stop: the resume must keep it
        wait_for(run.while_running(lambda: len(checkpoint_epochs(storage, NAME)) >= 3 and newest_searcher(sweep_dir)["stopped_at"]), timeout_s=300, what="a stop in a snapshot")
    finally:
        run.kill()
    before = newest_searcher(sweep_dir)["stopped_at"]
    resume = raysweep(tmp_path, "resume", NAME)
    assert resume.wait(600) == 0, resume.output()[-4000:]

    state = newest_searcher(sweep_dir)
    values, stopped_at, numbers = reported(sweep_dir), state["stopped_at"], state["tune_trials"]
    assert len(values) == TRIALS and stopped_at, (values, stopped_at)  # the test covers stops
    assert before and before.items() <= stopped_at.items(), (before, stopped_at)  # the kill took back no stop
    check_stops_are_pareto_ranks(state, values)

    # Optuna: the stopped trials PRUNED, the others COMPLETE with their last epoch's objectives
    study: optuna.Study = state["study"]
    for trial_id, (number, _) in numbers.items():
        trial = study.trials[number]
        if trial_id in stopped_at:
            assert trial.state == optuna.trial.TrialState.PRUNED, trial_id
        else:
            assert trial.state == optuna.trial.TrialState.COMPLETE and tuple(trial.values) == values[trial_id][EPOCHS], trial_id
    optuna_front = {t for t, (n, _) in numbers.items() if n in {b.number for b in study.best_trials}}

    # the report marks the finished trials no other finished trial dominates: Optuna's front
    proc = raysweep(tmp_path, "report", NAME, "--json")
    assert proc.wait(120) == 0, proc.output()[-2000:]
    payload = json.loads(proc.output().strip().splitlines()[-1])
    rows = {t["trial_id"]: t for t in payload["trials"]}
    assert {t for t, r in rows.items() if r["outcome"].startswith("stopped (asha, epoch")} == set(stopped_at), rows
    finished = {t: minimized([values[t][EPOCHS]], MODES)[0] for t in rows if t not in stopped_at}
    expected = {t for t in finished if not any(dominates(finished[o], finished[t]) for o in finished)}
    assert {t for t, r in rows.items() if r["pareto"]} == set(payload["pareto_front"]) == expected == optuna_front, (payload["pareto_front"], expected)
    for t in expected:
        assert tuple(rows[t]["objectives"][m] for m in METRICS) == values[t][EPOCHS]

    # MLflow: the parent run holds the same front as a table, and its plot
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name(NAME)
    [parent] = client.search_runs([exp.experiment_id], filter_string=f"tags.`raysweep.sweep_id` = '{NAME}' and tags.`raysweep.role` = 'sweep'")
    table = Path(client.download_artifacts(parent.info.run_id, "pareto_front.csv", str(tmp_path))).read_text()
    assert {r["trial_id"] for r in csv.DictReader(io.StringIO(table))} == expected
    assert {"search/pareto_front.png", "search/pareto_front.html"} <= {a.path for a in client.list_artifacts(parent.info.run_id, "search")}
