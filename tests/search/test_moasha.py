"""Multi-objective ASHA (`raysweep.search.moasha`): Pareto ranking, the rung decision, and the
searcher that keeps the rungs across a resume (as Tune restores it: `tuner.pkl` loaded, the
searcher's snapshot restored into it). No Ray."""

import math

import optuna
import pytest
from ray import cloudpickle as pickle  # what Tune pickles tuner.pkl with
from ray.tune.schedulers import TrialScheduler

from raysweep.config import load_sweep
from raysweep.search.moasha import MoashaRungs, rung_levels
from raysweep.search.pareto import crowding_distance, minimized, nondominated_fronts, nsga2_order, pareto_front
from raysweep.search.schedulers import build_pruner, build_trial_scheduler
from raysweep.search.tune_scheduler import PrunerScheduler
from raysweep.sweep.experiment import searcher_for
from raysweep.sweep.results import TrialRow, mark_pareto_front, pareto_csv
from tests.conftest import tiny_config
from tests.search.tune_steps import tell

F1, LOSS = "val/macro_f1", "val/loss"
EPOCHS = 4


# -- Pareto ranking --------------------------------------------------------------------------
def test_fronts_peel_the_non_dominated_points_first():
    points = [(1, 5), (2, 2), (5, 1), (3, 3), (4, 4), (6, 6)]  # minimized
    assert nondominated_fronts(points) == [[0, 1, 2], [3], [4], [5]]
    assert pareto_front(points) == [0, 1, 2]


def test_crowding_distance_favours_the_ends_and_the_sparse_middle():
    points = [(0, 10), (10, 0), (1, 9), (5, 5)]  # one front
    distance = crowding_distance(points, [0, 1, 2, 3])
    assert distance[0] == distance[1] == math.inf
    assert distance[3] > distance[2]  # (5, 5) sits alone, (1, 9) beside an end
    assert nsga2_order(points) == [0, 1, 3, 2]


def test_maximized_objectives_are_negated():
    assert minimized([(0.9, 0.2)], ["max", "min"]) == [(-0.9, 0.2)]


# -- the rung decision -----------------------------------------------------------------------
def rungs(modes=("max", "min"), reduction_factor=2) -> MoashaRungs:
    return MoashaRungs(list(modes), rung_levels(1, reduction_factor, EPOCHS), reduction_factor)


def test_rungs_sit_at_grace_period_times_powers_of_the_reduction_factor_below_max_t():
    assert rung_levels(1, 2, 4) == [1, 2]
    assert rung_levels(2, 3, 20) == [2, 6, 18]
    assert rung_levels(3, 2, 3) == []


def test_a_dominated_trial_stops_and_a_dominating_one_goes_on():
    r = rungs()
    assert r.judge("a", 1, [0.9, 0.2])  # alone at the rung
    assert not r.judge("b", 1, [0.8, 0.3])  # worse f1 and worse loss than a
    assert r.judge("c", 1, [0.95, 0.1])  # beats both: the top 3 // 2 = 1
    assert r.judge("b", 3, [0.1, 9.0])  # off the rungs nothing is judged


def test_within_a_cut_front_the_crowded_trial_stops():
    # front {a, b, c, f} of 6 at the rung keeps 3: the two ends, then the sparser of c and f
    r = rungs()
    for trial_id, values in {"a": (0.9, 0.5), "b": (0.5, 0.1), "f": (0.7, 0.3), "d": (0.3, 0.9), "e": (0.2, 0.95)}.items():
        r.judge(trial_id, 1, values)
    assert not r.judge("c", 1, (0.86, 0.46))  # non-dominated, but crowded beside a
    assert set(r.promoted(1)) == {"a", "b", "f"}


@pytest.mark.parametrize("modes, goes_on", [(("max", "min"), True), (("min", "max"), False)])
def test_each_objective_is_ranked_by_its_own_mode(modes, goes_on):
    r = rungs(modes)
    r.judge("a", 1, [0.5, 0.5])
    assert r.judge("b", 1, [0.9, 0.4]) is goes_on


def test_a_trial_without_finite_objectives_at_a_rung_stops():
    r = rungs()
    r.judge("a", 1, [0.9, 0.2])
    assert not r.judge("b", 1, [0.95, float("nan")])
    assert "b" not in r.records[1]


# -- the searcher and Tune's scheduler --------------------------------------------------------
def started(sweep_file, tmp_path, **search):
    cfg = tiny_config(train={"epochs": EPOCHS}, search={
        "algorithm": "optuna", "metric": [F1, LOSS], "mode": ["max", "min"], "scheduler": "asha",
        "grace_period": 1, "reduction_factor": 2, "num_samples": 20, **search,
    })
    sweep = load_sweep(sweep_file(cfg))
    searcher, _, _ = searcher_for(sweep, str(tmp_path / "train"))
    scheduler = build_trial_scheduler(sweep.config.search, EPOCHS, searcher)
    return searcher, scheduler, pickle.dumps((searcher, scheduler))


def resumed(tuner_pkl: bytes, searcher, tmp_path):
    searcher.save(str(tmp_path / "searcher-state.pkl"))
    searcher2, scheduler2 = pickle.loads(tuner_pkl)
    searcher2.restore(str(tmp_path / "searcher-state.pkl"))
    return searcher2, scheduler2


def decision(searcher, scheduler, trial_id: str, epoch: int, f1: float, loss: float) -> str:
    return tell(searcher, scheduler, trial_id, {"epoch": epoch, F1: f1, LOSS: loss})


def state(searcher, trial_id: str):
    return searcher.study.trials[searcher.tune_trials[trial_id][0]].state


def test_asha_on_two_metrics_is_moasha_in_the_searcher(sweep_file, tmp_path):
    searcher, scheduler, _ = started(sweep_file, tmp_path)
    assert isinstance(scheduler, PrunerScheduler) and searcher.rungs.levels == [1, 2]
    assert build_pruner(load_sweep(sweep_file(tiny_config(search={"metric": [F1, LOSS], "mode": ["max", "min"], "scheduler": "asha"}))).config.search, EPOCHS) is None
    assert started(sweep_file, tmp_path / "one", metric=F1, mode="max")[0].rungs is None


def test_a_dominated_trial_is_stopped_at_its_rung_and_told_to_optuna_as_pruned(sweep_file, tmp_path):
    searcher, scheduler, _ = started(sweep_file, tmp_path)
    said = [decision(searcher, scheduler, "a", epoch, 0.5 + 0.1 * epoch, 1.0 - 0.1 * epoch) for epoch in range(1, EPOCHS + 1)]
    assert said == [TrialScheduler.CONTINUE] * 3 + [TrialScheduler.STOP]  # the last: max_t
    assert decision(searcher, scheduler, "b", 1, 0.4, 1.2) == TrialScheduler.STOP
    assert searcher.stopped_at == {"b": 1}
    assert state(searcher, "a") == optuna.trial.TrialState.COMPLETE and searcher.study.trials[0].values == [0.9, 0.6]
    assert state(searcher, "b") == optuna.trial.TrialState.PRUNED


def test_the_rung_records_and_stops_survive_a_resume(sweep_file, tmp_path):
    searcher, scheduler, tuner_pkl = started(sweep_file, tmp_path)
    assert decision(searcher, scheduler, "a", 1, 0.8, 0.3) == TrialScheduler.CONTINUE
    assert decision(searcher, scheduler, "b", 1, 0.4, 1.2) == TrialScheduler.STOP
    searcher2, scheduler2 = resumed(tuner_pkl, searcher, tmp_path)
    assert searcher2.rungs.records == {1: {"a": (0.8, 0.3), "b": (0.4, 1.2)}} and searcher2.stopped_at == {"b": 1}
    # judged against the records made before the kill: a fresh searcher lets its first trial on
    assert decision(searcher2, scheduler2, "c", 1, 0.7, 0.5) == TrialScheduler.STOP
    fresh, fresh_scheduler, _ = started(sweep_file, tmp_path / "fresh")
    assert decision(fresh, fresh_scheduler, "c", 1, 0.7, 0.5) == TrialScheduler.CONTINUE


# -- the report's Pareto front ----------------------------------------------------------------
def row(trial_id: str, outcome: str, f1: float, loss: float) -> TrialRow:
    return TrialRow(trial_id, "TERMINATED", {"optimizer.lr": 0.1}, f1, 4, 4, None, None, outcome=outcome, objectives={F1: f1, LOSS: loss})


def test_the_front_holds_the_finished_trials_no_other_finished_trial_dominates():
    rows = [row("a", "finished", 0.9, 0.5), row("b", "finished", 0.8, 0.3), row("c", "finished", 0.7, 0.6), row("s", "stopped (asha, epoch 1)", 0.99, 0.01)]
    mark_pareto_front(rows, [F1, LOSS], ["max", "min"])
    assert {r.trial_id: r.pareto for r in rows} == {"a": True, "b": True, "c": False, "s": False}
    assert pareto_csv(rows).splitlines() == ["trial_id,val/macro_f1,val/loss,optimizer.lr,mlflow_run_id", "a,0.9,0.5,0.1,", "b,0.8,0.3,0.1,"]


def test_an_extension_starts_from_the_earlier_rung_records(sweep_file, tmp_path):
    first, scheduler, _ = started(sweep_file, tmp_path)
    decision(first, scheduler, "a", 1, 0.8, 0.3)
    decision(first, scheduler, "b", 1, 0.4, 1.2)
    earlier = pickle.loads(pickle.dumps(first.__getstate__()))
    extension, scheduler2, _ = started(sweep_file, tmp_path / "ext", seed=1)
    extension.seed_from(earlier)
    assert extension.rungs.records == {1: {"earlier:a": (0.8, 0.3), "earlier:b": (0.4, 1.2)}}
    assert decision(extension, scheduler2, "a", 1, 0.7, 0.5) == TrialScheduler.STOP  # a new trial "a": no clash
