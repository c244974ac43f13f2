"""Sweeps end to end on the session's Ray instance (2 CPUs): search algorithms,
resources, cross-validation, failures."""

import json
import re

import pytest

from raysweep.cli import main as cli_main
from raysweep.commands import load_checked
from raysweep.sweep.experiment import run_sweep
from raysweep.sweep.layout import SweepLayout
from raysweep.sweep.results import read_trials
from tests.conftest import REPO, tiny_config

pytestmark = pytest.mark.ray


@pytest.fixture(autouse=True)
def no_leaked_worker_groups(ray_session):
    """After every sweep, no placement group may still hold resources (a leak hangs later sweeps)."""
    yield
    import time

    deadline = time.monotonic() + 15
    while True:
        live = {k: v["bundles"] for k, v in ray_session.util.placement_group_table().items() if v["state"] != "REMOVED"}
        if not live or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert live == {}


def sweep_of(sweep_file, **sections):
    return load_checked(sweep_file(tiny_config(**sections)))


def run(sweep, tmp_path, name=None):
    outcome = run_sweep(sweep, storage=str(tmp_path / "results"), name=name)
    rows, _, _ = read_trials(outcome.layout)
    return outcome, rows


def result_lines(layout: SweepLayout, trial_id: str) -> list[dict]:
    logdir = next(n for n in layout.listdir() if n == trial_id or n.startswith(f"{trial_id}_"))  # trial_dirname
    return [json.loads(line) for line in layout.read_text(f"{logdir}/result.json").splitlines() if line.strip()]


def max_overlap(layout: SweepLayout, trial_ids) -> int:
    """Most trials running at the same moment, from their reports' timestamps."""
    spans = []
    for tid in trial_ids:
        lines = result_lines(layout, tid)
        start = lines[0]["timestamp"] - lines[0]["time_this_iter_s"]
        spans.append((start, lines[-1]["timestamp"]))
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


@pytest.mark.slow
def test_quickstart_optuna_asha_with_two_worker_trials_runs_two_at_once(ray_session, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = cli_main([
        "run", str(REPO / "search_spaces" / "quickstart.yaml"),
        "--set", "search.num_samples=4", "--set", "resources.workers=2",
        "--set", "train.epochs=3", "--set", "tracking.enabled=false",
    ])
    assert code == 0
    layout = SweepLayout.find("quickstart", str(tmp_path / "raysweep_results"))
    rows, _, _ = read_trials(layout)
    assert len(rows) == 4 and len({r.trial_id for r in rows}) == 4
    assert all(r.status == "TERMINATED" for r in rows)
    assert all(1 <= r.epochs_done <= 3 for r in rows)
    assert max_overlap(layout, [r.trial_id for r in rows]) >= 2
    out = capsys.readouterr().out
    assert "2 trial(s) at once" in out
    assert re.search(r"^trial +status .* lr ", out, re.M)  # the report's table: parameters by their leaf


@pytest.mark.slow
def test_grid_runs_each_cell_exactly_once_with_conditionals(ray_session, sweep_file, tmp_path):
    sweep = sweep_of(
        sweep_file,
        loss={"name": {"grid": ["ce", "focal"]}, "gamma": {"grid": [1.0, 2.0]}},
        optimizer={"lr": {"grid": [0.05, 0.1]}},
        train={"epochs": 1},
        search={"algorithm": "grid"},
    )
    _, rows = run(sweep, tmp_path)
    cells = sorted((r.params["loss.name"], r.params.get("loss.gamma"), r.params["optimizer.lr"]) for r in rows)
    # ce takes no gamma: 2 ce cells + 4 focal cells, each once
    assert cells == sorted([("ce", None, 0.05), ("ce", None, 0.1)] + [("focal", g, lr) for g in (1.0, 2.0) for lr in (0.05, 0.1)])
    assert all(r.status == "TERMINATED" for r in rows)


def test_optuna_over_a_grid_and_distributions_keeps_the_grid(ray_session, sweep_file, tmp_path):
    sweep = sweep_of(
        sweep_file,
        loss={"name": {"grid": ["ce", "focal"]}, "gamma": {"uniform": [0.5, 3.0]}},
        optimizer={"lr": {"loguniform": [0.01, 0.3]}},
        train={"epochs": 1},
        search={"algorithm": "optuna", "num_samples": 4, "scheduler": "none", "seed": 3},
    )
    _, rows = run(sweep, tmp_path)
    by_loss = {name: [r for r in rows if r.params["loss.name"] == name] for name in ("ce", "focal")}
    assert len(by_loss["ce"]) == 2 and len(by_loss["focal"]) == 2
    assert all("loss.gamma" not in r.params for r in by_loss["ce"])
    assert all(0.5 <= r.params["loss.gamma"] <= 3.0 for r in by_loss["focal"])
    assert len({r.params["optimizer.lr"] for r in rows}) == 4


def test_per_trial_cv_reports_fold_mean_and_std_and_asha_prunes_on_the_mean(ray_session, sweep_file, tmp_path):
    sweep = sweep_of(
        sweep_file,
        data={"folds": 3, "num_samples": 120},
        optimizer={"lr": {"grid": [0.1, 1e-5]}},
        train={"epochs": 3},
        resources={"max_concurrent": 1},
        search={"algorithm": "grid", "scheduler": "asha", "grace_period": 1, "reduction_factor": 2, "cv": {"mode": "per_trial"}},
        tracking={"enabled": True, "uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "artifact_location": str(tmp_path / "mlartifacts"), "log_models": False},
    )
    outcome, rows = run(sweep, tmp_path)
    good = next(r for r in rows if r.params["optimizer.lr"] == 0.1)
    bad = next(r for r in rows if r.params["optimizer.lr"] == 1e-5)
    assert good.epochs_done == 3
    assert bad.epochs_done < 3  # stopped by ASHA at a rung, on the fold mean
    for line in result_lines(outcome.layout, good.trial_id):
        folds = [line[f"fold{k}/val/macro_f1"] for k in range(3)]
        assert line["val/macro_f1"] == pytest.approx(sum(folds) / 3)
        assert line["val/macro_f1_std"] == pytest.approx((sum((f - sum(folds) / 3) ** 2 for f in folds) / 3) ** 0.5)
    # in MLflow as Tune judged them, though the pruned trial's worker group may train on a moment:
    # the trial run and its fold runs end FINISHED, the pruned one tagged as stopped by ASHA, each
    # with exactly the epochs Tune judged
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for row, outcome_tag in [(good, "finished"), (bad, f"stopped (asha, epoch {bad.epochs_done})")]:
        (trial_run,) = client.search_runs([e.experiment_id for e in client.search_experiments()], f"tags.`raysweep.trial_id` = '{row.trial_id}'")
        folds = client.search_runs([trial_run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{trial_run.info.run_id}'")
        assert [trial_run.info.status, *(f.info.status for f in folds)] == ["FINISHED"] * 4
        assert trial_run.data.tags["raysweep.outcome"] == outcome_tag
        for run_id in [trial_run.info.run_id, *(f.info.run_id for f in folds)]:
            assert [m.step for m in client.get_metric_history(run_id, "val/macro_f1")] == list(range(1, row.epochs_done + 1))


@pytest.mark.slow
def test_fold_as_trial_runs_each_configuration_on_every_fold(ray_session, sweep_file, tmp_path, capsys):
    sweep = sweep_of(
        sweep_file,
        data={"folds": 3, "num_samples": 120},
        optimizer={"lr": {"grid": [0.05, 0.2]}},
        train={"epochs": 1},
        search={"algorithm": "grid", "cv": {"mode": "fold_as_trial"}},
    )
    outcome, rows = run(sweep, tmp_path)
    assert sorted((r.params["optimizer.lr"], r.params["data.fold"]) for r in rows) == [(lr, k) for lr in (0.05, 0.2) for k in range(3)]
    cli_main(["report", outcome.layout.uri, "--json"])
    payload = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    groups = {g["params"]["optimizer.lr"]: g for g in payload["folds"]}
    assert set(groups) == {0.05, 0.2} and all(g["folds_done"] == 3 for g in groups.values())
    metrics = [r.metric for r in rows if r.params["optimizer.lr"] == 0.2]
    assert groups[0.2]["mean"] == pytest.approx(sum(metrics) / 3)


def test_a_diverging_trial_fails_with_its_reason_and_the_sweep_goes_on(ray_session, sweep_file, tmp_path):
    sweep = sweep_of(
        sweep_file,
        optimizer={"lr": {"grid": [0.1, 1e30]}, "momentum": 0.0},
        train={"epochs": 2},
        search={"algorithm": "grid"},
    )
    outcome, rows = run(sweep, tmp_path)
    status = {r.params["optimizer.lr"]: r.status for r in rows}
    assert status == {0.1: "TERMINATED", 1e30: "ERROR"}
    bad = next(r for r in rows if r.status == "ERROR")
    logdir = next(n for n in outcome.layout.listdir() if n.startswith(f"{bad.trial_id}_"))  # trial_dirname
    assert "training loss became" in outcome.layout.read_text(f"{logdir}/error.txt")


def test_a_trial_that_can_never_fit_is_refused_before_the_sweep(ray_session, sweep_file, tmp_path, capsys):
    path = sweep_file(tiny_config(resources={"workers": 2, "gpus_per_worker": 1}))
    code = cli_main(["run", str(path), "--storage", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {path}: resources.gpus_per_worker: a trial needs 2 GPU (2 worker(s) x 1), the cluster has 0"
    assert not (tmp_path / "r").exists()


def test_a_new_sweep_with_a_taken_name_gets_its_own_directory(ray_session, sweep_file, tmp_path):
    sweep = sweep_of(sweep_file, train={"epochs": 1}, search={"num_samples": 1})
    first, _ = run(sweep, tmp_path)
    second, rows = run(sweep, tmp_path)
    assert (first.layout.sweep_id, second.layout.sweep_id) == ("tiny", "tiny-2")
    assert len(rows) == 1


@pytest.mark.slow  # 4 trials: ~30 s on 2 cores
def test_tied_cases_run_once_per_cell_and_every_record_agrees(ray_session, sweep_file, tmp_path):
    """search.cases x a grid: Tune's trial configs (ExperimentAnalysis) and the sweep's result
    records (the leaderboard rows) each hold exactly the 4 planned parameter tuples, once."""
    from ray.tune import ExperimentAnalysis

    sweep = sweep_of(
        sweep_file, train={"epochs": 1}, resources={"workers": 1, "cpus_per_worker": 0.5, "inline": True},
        scheduler={"name": {"grid": ["cosine", "multistep"]}},
        search={"algorithm": "grid", "cases": [{"train.batch_size": 8, "train.accumulate": 2}, {"train.batch_size": 16, "train.accumulate": 1}]},
    )
    outcome, rows = run(sweep, tmp_path)
    keys = ("train.batch_size", "train.accumulate", "scheduler.name")
    planned = sorted((b, a, s) for b, a in ((8, 2), (16, 1)) for s in ("cosine", "multistep"))
    analysis = ExperimentAnalysis(outcome.layout.uri)
    assert sorted(tuple(t.config[k] for k in keys) for t in analysis.trials) == planned
    assert sorted(tuple(r.params[k] for k in keys) for r in rows) == planned
    assert all(r.status == "TERMINATED" and r.epochs_done == 1 for r in rows)
