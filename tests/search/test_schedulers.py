"""Early stopping across a resume: the stop decisions are Optuna's pruners' on the searcher's
study, so they resume with the searcher's stored state.

Tune pickles the searcher and the scheduler together in `tuner.pkl` when the sweep starts, and
on resume loads that pickle and restores the searcher's newest snapshot into it in place; these
tests do the same (`started`, `resumed`), without Ray."""

import json
from pathlib import Path

import optuna
import pytest
from ray import cloudpickle as pickle  # what Tune pickles tuner.pkl with
from ray.tune.schedulers import TrialScheduler

from raysweep.config import load_sweep
from raysweep.search.schedulers import build_trial_scheduler
from raysweep.search.tune_scheduler import PrunerScheduler
from raysweep.search.searcher import SweepSearcher
from raysweep.sweep.experiment import searcher_for
from tests.conftest import tiny_config
from tests.search.tune_steps import tell

METRIC = "val/macro_f1"
EPOCHS = 4


def started(sweep_file, tmp_path, name: str, data: dict | None = None, **search):
    """(searcher, scheduler) as a sweep starts them, and the pickle Tune keeps of them."""
    cfg = tiny_config(data=data or {}, train={"epochs": EPOCHS}, search={"algorithm": "optuna", "scheduler": name, "grace_period": 1, "reduction_factor": 2, "num_samples": 20, **search})
    sweep = load_sweep(sweep_file(cfg))
    searcher, _, _ = searcher_for(sweep, str(tmp_path / "train"))
    scheduler = build_trial_scheduler(sweep.config.search, EPOCHS, searcher)
    return searcher, scheduler, pickle.dumps((searcher, scheduler))


def resumed(tuner_pkl: bytes, searcher: SweepSearcher, tmp_path):
    """The pair as `Tuner.restore` makes it: tuner.pkl loaded, the searcher's snapshot restored into it."""
    searcher.save(str(tmp_path / "searcher-state.pkl"))
    searcher2, scheduler2 = pickle.loads(tuner_pkl)
    searcher2.restore(str(tmp_path / "searcher-state.pkl"))
    return searcher2, scheduler2


def decision(searcher, scheduler, trial_id: str, epoch: int, value: float) -> str:
    return tell(searcher, scheduler, trial_id, {"epoch": epoch, METRIC: value})


def run_trial(searcher, scheduler, trial_id: str, values: list[float]) -> int:
    """A trial's epochs until the scheduler stops it (or the last); the epoch it ended at."""
    for epoch, value in enumerate(values, start=1):
        if decision(searcher, scheduler, trial_id, epoch, value) == TrialScheduler.STOP:
            return epoch
    searcher.on_trial_complete(trial_id, {"epoch": len(values), METRIC: values[-1]})
    return len(values)


def test_the_scheduler_and_the_searcher_tune_restores_are_one_object(sweep_file, tmp_path):
    searcher, _, tuner_pkl = started(sweep_file, tmp_path, "asha")
    searcher.suggest("a")
    searcher2, scheduler2 = resumed(tuner_pkl, searcher, tmp_path)
    assert isinstance(scheduler2, PrunerScheduler) and scheduler2.searcher is searcher2
    assert "a" in scheduler2.searcher.tune_trials  # the snapshot, not the state at the start


def test_a_resumed_asha_prunes_on_the_scores_recorded_before_the_stop(sweep_file, tmp_path):
    searcher, scheduler, tuner_pkl = started(sweep_file, tmp_path, "asha")
    for trial_id, values in {"a": [0.8, 0.85, 0.9, 0.92], "b": [0.7, 0.75, 0.8, 0.85], "c": [0.6, 0.7, 0.75, 0.8]}.items():
        run_trial(searcher, scheduler, trial_id, values)
    searcher2, scheduler2 = resumed(tuner_pkl, searcher, tmp_path)
    # below the rung-1 scores of a, b and c: stopped, as it would have been without the stop
    assert decision(searcher2, scheduler2, "late", 1, 0.5) == TrialScheduler.STOP
    assert searcher2.stopped_at["late"] == 1
    searcher2.on_trial_complete("late", {"epoch": 1, METRIC: 0.5})
    assert searcher2.study.trials[searcher2.tune_trials["late"][0]].state == optuna.trial.TrialState.PRUNED


def test_a_fresh_asha_lets_its_first_trial_pass_every_rung(sweep_file, tmp_path):
    searcher, scheduler, _ = started(sweep_file, tmp_path, "asha")
    assert run_trial(searcher, scheduler, "first", [0.5, 0.4, 0.3, 0.2]) == EPOCHS
    assert "first" not in searcher.stopped_at


def test_a_resumed_median_rule_stops_a_trial_below_the_stored_trials_median(sweep_file, tmp_path):
    searcher, scheduler, tuner_pkl = started(sweep_file, tmp_path, "median")
    for trial_id, values in {"a": [0.8, 0.9, 0.9, 0.9], "b": [0.7, 0.8, 0.8, 0.8], "c": [0.75, 0.85, 0.85, 0.85]}.items():
        assert run_trial(searcher, scheduler, trial_id, values) == EPOCHS
    searcher2, scheduler2 = resumed(tuner_pkl, searcher, tmp_path)
    assert decision(searcher2, scheduler2, "late", 1, 0.5) == TrialScheduler.STOP


def test_a_fresh_median_rule_lets_a_trial_on_until_it_has_trials_to_compare(sweep_file, tmp_path):
    searcher, scheduler, _ = started(sweep_file, tmp_path, "median")
    assert decision(searcher, scheduler, "late", 1, 0.5) == TrialScheduler.CONTINUE


def test_a_resumed_trial_is_not_compared_with_its_own_past(sweep_file, tmp_path):
    # d, part-way at the stop, runs again from its epoch-2 checkpoint: a and b are the only
    # others, too few (3 needed) to stop it; compared with its own stored results too, it would be
    searcher, scheduler, tuner_pkl = started(sweep_file, tmp_path, "median")
    for trial_id in ("a", "b"):
        run_trial(searcher, scheduler, trial_id, [0.9] * EPOCHS)
    for epoch in (1, 2):
        decision(searcher, scheduler, "d", epoch, 0.3)
    searcher2, scheduler2 = resumed(tuner_pkl, searcher, tmp_path)
    assert decision(searcher2, scheduler2, "d", 3, 0.3) == TrialScheduler.CONTINUE


def test_an_epoch_reported_again_is_judged_once(sweep_file, tmp_path):
    searcher, scheduler, _ = started(sweep_file, tmp_path, "median")
    for epoch, f1 in [(1, 0.1), (2, 0.2), (3, 0.3), (2, 0.25)]:  # restarted from epoch 1's checkpoint
        decision(searcher, scheduler, "t", epoch, f1)
    trial = searcher.study.trials[searcher.tune_trials["t"][0]]
    assert trial.intermediate_values == {1: 0.1, 2: 0.2, 3: 0.3}  # as Tune's result.json keeps it


def write_checkpoint(tmp_path, trial_id: str, values: list[float]) -> None:
    """The trial's newest checkpoint as Train leaves it: its whole per-epoch history."""
    history = [{"epoch": e, METRIC: v} for e, v in enumerate(values, start=1)]
    ckpt = Path(tmp_path / "train" / trial_id / f"checkpoint_{len(values):03d}")
    ckpt.mkdir(parents=True)
    (ckpt / "meta.json").write_text(json.dumps({"epoch": len(values), "metrics": history[-1], "history": history}))


def test_a_rung_passed_after_the_last_snapshot_is_judged_at_that_rung_on_resume(sweep_file, tmp_path):
    # a and b set the rung-1 and rung-2 bar; t is snapshotted after epoch 1 (above the bar), the
    # driver is killed after its epoch 2 (below it): resumed, its first report (epoch 3) brings
    # epoch 2 back from the checkpoint, judged at rung 2 as the killed driver judged it
    searcher, scheduler, tuner_pkl = started(sweep_file, tmp_path, "asha")
    for trial_id in ("a", "b"):
        run_trial(searcher, scheduler, trial_id, [0.8, 0.9, 0.9, 0.9])
    assert decision(searcher, scheduler, "t", 1, 0.85) == TrialScheduler.CONTINUE
    searcher2, scheduler2 = resumed(tuner_pkl, searcher, tmp_path)  # the snapshot after epoch 1
    assert decision(searcher, scheduler, "t", 2, 0.1) == TrialScheduler.STOP  # the killed driver's decision
    write_checkpoint(tmp_path, "t", [0.85, 0.1])
    assert decision(searcher2, scheduler2, "t", 3, 0.2) == TrialScheduler.STOP
    assert searcher2.stopped_at["t"] == searcher.stopped_at["t"] == 2
    assert searcher2.study.trials[searcher2.tune_trials["t"][0]].intermediate_values == {1: 0.85, 2: 0.1, 3: 0.2}


CURVES = [[0.3 + 0.1 * ((i * 7) % 5) + 0.05 * e for e in range(EPOCHS)] for i in range(12)]


@pytest.mark.parametrize("name", ["hyperband", "asha", "median"])
def test_a_sweep_saved_and_resumed_part_way_stops_the_same_trials_at_the_same_epochs(sweep_file, tmp_path, name):
    def sweep(resume_after: int | None) -> dict[str, int]:
        searcher, scheduler, tuner_pkl = started(sweep_file, tmp_path / name / str(resume_after), name)
        ended = {}
        for i, curve in enumerate(CURVES):
            if i == resume_after:
                searcher, scheduler = resumed(tuner_pkl, searcher, tmp_path / name / str(resume_after))
            ended[f"t{i}"] = run_trial(searcher, scheduler, f"t{i}", curve)
        assert ended == {t: searcher.stopped_at.get(t, EPOCHS) for t in ended}
        return ended

    (tmp_path / name / "None").mkdir(parents=True)
    (tmp_path / name / "5").mkdir(parents=True)
    uninterrupted = sweep(None)
    assert any(e < EPOCHS for e in uninterrupted.values()), uninterrupted  # the test covers stops
    assert sweep(5) == uninterrupted


def test_under_fold_as_trial_each_fold_is_judged_on_its_own_values(sweep_file, tmp_path):
    # one Optuna trial per configuration holds no per-fold values: the folds' Tune trials are
    # judged in the searcher's `fold_runs` study, one trial each, and resume with it
    searcher, scheduler, tuner_pkl = started(sweep_file, tmp_path, "asha", data={"folds": 2}, cv={"mode": "fold_as_trial"})
    assert searcher.fold_runs is not None
    for trial_id in ("a0", "a1", "b0", "b1"):  # two configurations, two folds each
        run_trial(searcher, scheduler, trial_id, [0.9, 0.9, 0.9, 0.9])
    searcher2, scheduler2 = resumed(tuner_pkl, searcher, tmp_path)
    assert decision(searcher2, scheduler2, "c0", 1, 0.1) == TrialScheduler.STOP
    assert [t.state for t in searcher2.fold_runs.trials][:4] == [optuna.trial.TrialState.COMPLETE] * 4


def test_a_tuner_pickle_from_before_the_move_still_finds_the_scheduler_class():
    """Sweeps started before `PrunerScheduler` moved to `tune_scheduler` name it under
    `raysweep.search.schedulers` in their `tuner.pkl` (a GLOBAL opcode: module, then name)."""
    import pickle

    old = b"craysweep.search.schedulers\nPrunerScheduler\n."
    assert pickle.loads(old) is PrunerScheduler
