"""The searcher on its own (no Ray cluster): what it suggests and what it tells Optuna."""


import pytest
from optuna.trial import TrialState

from raysweep.config import load_sweep
from raysweep.search.searcher import SweepSearcher
from raysweep.sweep.experiment import searcher_for
from tests.conftest import tiny_config


def make(sweep_file, **sections):
    sweep = load_sweep(sweep_file(tiny_config(**sections)))
    return searcher_for(sweep)


def drain(searcher, limit=100):
    out = []
    for i in range(limit):
        s = searcher.suggest(f"t{i}")
        if s == SweepSearcher.FINISHED or s is None:
            break
        out.append(s)
    return out


def finish(searcher, trial_id, value, epochs=2):
    for e in range(1, epochs + 1):
        searcher.on_trial_result(trial_id, {"epoch": e, "val/macro_f1": value * e / epochs})
    searcher.on_trial_complete(trial_id, {"epoch": epochs, "val/macro_f1": value})


def test_grid_enumerates_each_cell_once_and_drops_dimensions_that_do_not_apply(sweep_file):
    searcher, spec, n = make(
        sweep_file,
        loss={"name": {"grid": ["ce", "focal"]}, "gamma": {"grid": [1.0, 2.0]}},
        optimizer={"lr": {"grid": [0.01, 0.1]}},
        search={"algorithm": "grid"},
    )
    got = drain(searcher)
    assert n == len(got) == 6
    keys = {tuple(sorted(c.items())) for c in got}
    assert len(keys) == 6
    assert all("loss.gamma" not in c for c in got if c["loss.name"] == "ce")


def test_grid_repeats_with_num_samples_and_samples_ranges_per_cell(sweep_file):
    searcher, _, n = make(
        sweep_file, optimizer={"lr": {"grid": [0.01, 0.1]}, "weight_decay": {"loguniform": [1e-5, 1e-3]}},
        search={"algorithm": "grid", "num_samples": 2},
    )
    got = drain(searcher)
    assert n == len(got) == 4
    assert sorted(c["optimizer.lr"] for c in got) == [0.01, 0.01, 0.1, 0.1]
    assert all(1e-5 <= c["optimizer.weight_decay"] <= 1e-3 for c in got)


def test_optuna_keeps_grid_cells_balanced_and_samples_the_rest(sweep_file):
    searcher, _, n = make(
        sweep_file, loss={"name": {"grid": ["ce", "focal"]}, "gamma": {"uniform": [0.5, 3.0]}},
        optimizer={"lr": {"loguniform": [1e-3, 1e-1]}}, search={"algorithm": "optuna", "num_samples": 6, "seed": 1},
    )
    got = drain(searcher)
    assert n == len(got) == 6
    assert [c["loss.name"] for c in got].count("ce") == 3
    assert all(("loss.gamma" in c) == (c["loss.name"] == "focal") for c in got)


def test_random_treats_grids_as_categorical(sweep_file):
    searcher, spec, n = make(sweep_file, optimizer={"lr": {"grid": [0.01, 0.1, 0.2]}}, search={"algorithm": "random", "num_samples": 5})
    assert spec.grid_paths == ()
    got = drain(searcher)
    assert len(got) == 5 and set(c["optimizer.lr"] for c in got) <= {0.01, 0.1, 0.2}


def test_list_valued_choices_go_through_optuna_by_index(sweep_file):
    searcher, _, _ = make(sweep_file, scheduler={"name": "multistep", "milestones": {"choice": [[1, 2], [3, 4]]}}, search={"num_samples": 4})
    got = drain(searcher)
    assert all(c["scheduler.milestones"] in ([1, 2], [3, 4]) for c in got)


def test_outcomes_told_to_optuna(sweep_file):
    searcher, _, _ = make(sweep_file, optimizer={"lr": {"grid": [0.01, 0.05, 0.1, 0.2]}}, train={"epochs": 2}, search={"algorithm": "grid"})
    drain(searcher)
    finish(searcher, "t0", 0.8)
    searcher.on_trial_result("t1", {"epoch": 1, "val/macro_f1": 0.3})
    searcher.on_trial_complete("t1", {"epoch": 1, "val/macro_f1": 0.3})  # stopped early by the scheduler
    searcher.on_trial_complete("t2", None, error=True)
    searcher.on_trial_complete("t3", {"epoch": 2, "diverged": 1, "val/macro_f1": float("nan")})
    states = [t.state for t in searcher.study.trials]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.FAIL]
    assert searcher.study.trials[0].value == 0.8
    assert searcher.study.trials[1].intermediate_values == {1: 0.3}


def test_the_best_epoch_is_the_value_told(sweep_file):
    searcher, _, _ = make(sweep_file, train={"epochs": 3}, search={"num_samples": 1})
    drain(searcher)
    for e, v in [(1, 0.5), (2, 0.9), (3, 0.7)]:
        searcher.on_trial_result("t0", {"epoch": e, "val/macro_f1": v})
    searcher.on_trial_complete("t0", {"epoch": 3, "val/macro_f1": 0.7})
    assert searcher.study.trials[0].value == 0.9


def test_fold_as_trial_runs_each_configuration_on_every_fold_and_tells_the_mean(sweep_file):
    searcher, spec, n = make(
        sweep_file, data={"folds": 3}, optimizer={"lr": {"loguniform": [1e-3, 1e-1]}}, train={"epochs": 1},
        search={"num_samples": 2, "cv": {"mode": "fold_as_trial"}},
    )
    got = drain(searcher)
    assert n == len(got) == 6
    assert [c["data.fold"] for c in got] == [0, 1, 2, 0, 1, 2]
    assert got[0]["optimizer.lr"] == got[1]["optimizer.lr"] == got[2]["optimizer.lr"] != got[3]["optimizer.lr"]
    for i, v in enumerate([0.6, 0.7, 0.8]):
        finish(searcher, f"t{i}", v, epochs=1)
    assert searcher.study.trials[0].value == pytest.approx(0.7)
    assert searcher.study.trials[1].state == TrialState.RUNNING


def test_state_survives_a_pickle_round_trip_and_continues_the_study(sweep_file, tmp_path):
    searcher, _, _ = make(sweep_file, optimizer={"lr": {"loguniform": [1e-3, 1e-1]}}, search={"num_samples": 4, "seed": 7})
    first = [searcher.suggest("a"), searcher.suggest("b")]
    finish(searcher, "a", 0.5)
    path = tmp_path / "searcher.pkl"
    searcher.save(str(path))
    fresh, _, _ = make(sweep_file, optimizer={"lr": {"loguniform": [1e-3, 1e-1]}}, search={"num_samples": 4, "seed": 7})
    fresh.restore(str(path))
    finish(fresh, "b", 0.6)  # a trial that was running when the driver died reports into the same study
    rest = drain(fresh)
    assert len(rest) == 2 and [t.state for t in fresh.study.trials[:2]] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert fresh.suggest("z") == SweepSearcher.FINISHED
    assert first[0] != rest[0]


def test_a_failed_trial_run_again_reports_into_a_new_optuna_trial(sweep_file):
    searcher, _, _ = make(sweep_file, optimizer={"lr": {"grid": [0.01, 0.1]}}, search={"algorithm": "grid"})
    drain(searcher)
    searcher.on_trial_complete("t0", None, error=True)
    finish(searcher, "t0", 0.9)  # --retry-errored: the same Tune trial, run again
    trials = searcher.study.trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.RUNNING, TrialState.COMPLETE]
    assert trials[2].params == trials[0].params and trials[2].value == 0.9
