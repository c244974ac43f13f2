"""A HyperBand sweep whose driver is SIGKILLed part-way and resumed stops the same trials at the
same epochs as HyperBand run without a stop on the same reported values.

The uninterrupted run is the searcher and scheduler `raysweep run` builds, in this process, told
the killed-and-resumed sweep's own per-epoch values in the order its trials ran (one at a time):
the training itself need not be bit-for-bit repeatable for the test to hold."""

import pickle
from pathlib import Path

import pytest
import yaml
from ray.tune.schedulers import TrialScheduler

from tests.conftest import tiny_config
from tests.fixtures.cli import RaysweepProcess, checkpoint_epochs, wait_for

pytestmark = pytest.mark.slow

METRIC = "val/macro_f1"
EPOCHS = 8
TRIALS = 10


def stored_searcher(sweep_dir: Path) -> dict:
    # one file per driver session; the newest name is the searcher as the resumed driver ended
    newest = max(sweep_dir.glob("searcher-state-*.pkl"), key=lambda p: p.name)
    return pickle.loads(newest.read_bytes())


def tune_last_epochs(sweep_dir: Path) -> dict[str, tuple[str, int]]:
    from ray.tune import ExperimentAnalysis

    analysis = ExperimentAnalysis(str(sweep_dir))
    frames = analysis.trial_dataframes
    return {t.trial_id: (t.status, int(frames[t.trial_id]["epoch"].max())) for t in analysis.trials}


def replayed_stops(sweep_path: Path, order: list[tuple[str, dict[int, float]]]) -> dict[str, int]:
    """Per trial, the epoch HyperBand stops it at (EPOCHS if never), told `order`'s values."""
    from raysweep.config import load_sweep
    from raysweep.search.schedulers import build_trial_scheduler
    from raysweep.sweep.experiment import searcher_for

    sweep = load_sweep(sweep_path)
    searcher, _, _ = searcher_for(sweep)
    scheduler = build_trial_scheduler(sweep.config.search, EPOCHS, searcher)
    ended = {}
    for trial_id, values in order:
        searcher.suggest(trial_id)
        ended[trial_id] = EPOCHS
        for epoch in sorted(values):
            result = {"epoch": epoch, METRIC: values[epoch]}
            if scheduler.on_trial_result(None, type("T", (), {"trial_id": trial_id}), result) == TrialScheduler.STOP:
                ended[trial_id] = epoch
                searcher.on_trial_complete(trial_id, result)
                break
            searcher.on_trial_result(trial_id, result)
        else:
            searcher.on_trial_complete(trial_id, {"epoch": max(values), METRIC: values[max(values)]})
    return ended


def test_a_killed_and_resumed_hyperband_sweep_keeps_its_stop_decisions(tmp_path):
    sweep_path = tmp_path / "sweep.yaml"
    sweep_path.write_text(yaml.safe_dump(tiny_config(
        name="hb",
        data={"num_samples": 120},
        optimizer={"lr": {"loguniform": [1e-4, 0.5]}},
        train={"epochs": EPOCHS, "batch_size": 16},
        resources={"inline": True, "max_concurrent": 1},  # one at a time: the order trials ran is their number
        search={"algorithm": "optuna", "num_samples": TRIALS, "scheduler": "hyperband", "grace_period": 1, "reduction_factor": 2, "seed": 1},
    )))
    storage = tmp_path / "results"
    run = RaysweepProcess(["run", str(sweep_path), "--storage", str(storage)], cwd=tmp_path)
    try:
        wait_for(run.while_running(lambda: len(checkpoint_epochs(storage, "hb")) >= 5), timeout_s=600, what="five trials started")
    finally:
        run.kill()
    before = checkpoint_epochs(storage, "hb")
    resume = RaysweepProcess(["resume", "hb", "--storage", str(storage)], cwd=tmp_path)
    assert resume.wait(900) == 0, resume.output()[-4000:]

    sweep_dir = storage / "hb"
    state = stored_searcher(sweep_dir)
    study, numbers, stopped_at = state["study"], state["tune_trials"], state["stopped_at"]
    tune = tune_last_epochs(sweep_dir)
    assert len(tune) == TRIALS and all(status == "TERMINATED" for status, _ in tune.values()), tune
    # Tune ended each trial at the epoch the study's pruner stopped it (or at the last), or, when
    # the stop reached a trial that had already reported on, the epoch it had then reported
    for trial_id, (_, last) in tune.items():
        assert last == EPOCHS if trial_id not in stopped_at else stopped_at[trial_id] <= last < EPOCHS, (trial_id, last, stopped_at)
    order = sorted(numbers, key=lambda t: numbers[t][0])
    values = [(t, dict(study.trials[numbers[t][0]].intermediate_values)) for t in order]
    replay = replayed_stops(sweep_path, values)
    assert replay == {t: stopped_at.get(t, EPOCHS) for t in order}, (replay, stopped_at)
    # the test covers stops, trials trained before the kill, and trials the resumed driver started
    assert stopped_at and before and set(tune) - set(before), (before, stopped_at)
