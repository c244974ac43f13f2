"""ASHA's rungs and the median rule's results across a resume: Tune restores the scheduler as
pickled at the sweep's start, so raysweep's schedulers replay the stored trials' results at
their first trial."""

import functools
import json
from ray import cloudpickle as pickle  # what Tune pickles tuner.pkl with
from pathlib import Path

from ray.tune.schedulers import TrialScheduler

from raysweep.config import load_sweep
from raysweep.search.schedulers import build_trial_scheduler
from raysweep.sweep.layout import SweepLayout
from raysweep.sweep.results import trial_histories
from tests.conftest import tiny_config

METRIC = "val/macro_f1"


class Trial:
    def __init__(self, trial_id):
        self.trial_id = trial_id


def stored_sweep(tmp_path, f1_by_trial: dict[str, list[float]]) -> SweepLayout:
    """A sweep directory as Tune and Train leave it: an experiment snapshot naming the trials
    (ended) and each trial's latest checkpoint with its per-epoch history."""
    layout = SweepLayout(str(tmp_path), "s")
    trial_data = []
    for trial, f1s in f1_by_trial.items():
        history = [{"epoch": e + 1, METRIC: f} for e, f in enumerate(f1s)]
        ckpt = Path(layout.train_storage) / trial / "checkpoint_000"
        ckpt.mkdir(parents=True)
        (ckpt / "meta.json").write_text(json.dumps({"epoch": len(f1s), "metrics": history[-1], "history": history}))
        state = {"trial_id": trial, "status": "TERMINATED", "config": {}, "relative_logdir": None}
        trial_data.append([json.dumps(state), json.dumps({"last_result": history[-1]})])
    layout.write_text("experiment_state-2026-01-01_00-00-00.json", json.dumps({"trial_data": trial_data}))
    return layout


class Controller:
    """What the median rule asks of Tune's controller when it has too few trials to compare."""

    def get_live_trials(self):
        return []


def decision(scheduler, trial, result: dict) -> str:
    """What the scheduler says of `trial`'s result, the trial added first (as Tune adds it)."""
    scheduler.on_trial_add(Controller(), trial)
    return scheduler.on_trial_result(Controller(), trial, result)


def restored(sweep_file, layout, name):
    search = load_sweep(sweep_file(tiny_config(search={"algorithm": "optuna", "scheduler": name, "grace_period": 1, "reduction_factor": 2}))).config.search
    scheduler = build_trial_scheduler(search, 4, functools.partial(trial_histories, layout))
    scheduler = pickle.loads(pickle.dumps(scheduler))  # as Tune keeps it in tuner.pkl and restores it
    scheduler.set_search_properties(METRIC, "max")
    return scheduler


def test_a_resumed_asha_prunes_on_the_scores_recorded_before_the_stop(sweep_file, tmp_path):
    layout = stored_sweep(tmp_path / "stored", {"a": [0.8, 0.85, 0.9, 0.92], "b": [0.7, 0.75], "c": [0.6]})
    scheduler = restored(sweep_file, layout, "asha")
    # below the rung-1 scores of a, b and c: stopped, as it would have been without the stop
    assert decision(scheduler, Trial("late"), {"epoch": 1, METRIC: 0.5}) == TrialScheduler.STOP


def test_a_fresh_asha_lets_its_first_trial_pass_every_rung(sweep_file, tmp_path):
    layout = SweepLayout(str(tmp_path / "empty"), "s")  # nothing stored yet
    scheduler = restored(sweep_file, layout, "asha")
    assert decision(scheduler, Trial("first"), {"epoch": 1, METRIC: 0.5}) == TrialScheduler.CONTINUE


def test_a_resumed_median_rule_stops_a_trial_below_the_stored_trials_median(sweep_file, tmp_path):
    layout = stored_sweep(tmp_path / "stored", {"a": [0.8, 0.9], "b": [0.7, 0.8], "c": [0.75, 0.85]})
    scheduler = restored(sweep_file, layout, "median")
    assert decision(scheduler, Trial("late"), {"epoch": 1, METRIC: 0.5}) == TrialScheduler.STOP


def test_a_fresh_median_rule_lets_a_trial_on_until_it_has_trials_to_compare(sweep_file, tmp_path):
    scheduler = restored(sweep_file, SweepLayout(str(tmp_path / "empty"), "s"), "median")
    assert decision(scheduler, Trial("late"), {"epoch": 1, METRIC: 0.5}) == TrialScheduler.CONTINUE


def test_a_resumed_trial_is_not_compared_with_its_own_past(sweep_file, tmp_path):
    # d, stopped part-way, runs again from its epoch-2 checkpoint: a and b are the only others,
    # too few (3 needed) to stop it; compared with its own stored results too, it would be stopped
    layout = stored_sweep(tmp_path / "stored", {"a": [0.9, 0.9, 0.9], "b": [0.9, 0.9, 0.9], "d": [0.3, 0.3, 0.3]})
    scheduler = restored(sweep_file, layout, "median")
    assert decision(scheduler, Trial("d"), {"epoch": 3, METRIC: 0.3}) == TrialScheduler.CONTINUE


def test_an_epoch_reported_again_replaces_the_first_report(sweep_file, tmp_path):
    scheduler = restored(sweep_file, SweepLayout(str(tmp_path / "empty"), "s"), "median")
    t = Trial("t")
    scheduler.on_trial_add(Controller(), t)
    for epoch, f1 in [(1, 0.1), (2, 0.2), (3, 0.3), (2, 0.25)]:  # restarted from epoch 1's checkpoint
        scheduler.on_trial_result(Controller(), t, {"epoch": epoch, METRIC: f1})
    assert [(r["epoch"], r[METRIC]) for r in scheduler._results[t]] == [(1, 0.1), (2, 0.25)]
