"""An extension's searcher starts from the earlier study (no Ray cluster): `SweepSearcher.seed_from`."""

import pickle

from optuna.trial import TrialState

from raysweep.config import load_sweep
from raysweep.search.searcher import PARAMS_ATTR, TUNE_IDS_ATTR
from raysweep.sweep.experiment import searcher_for
from raysweep.sweep.extension import space_changes
from tests.conftest import tiny_config
from tests.search.test_searcher import drain, finish


def searcher(sweep_file, name, **sections):
    sweep = load_sweep(sweep_file(tiny_config(**sections), name=name))
    return sweep, *searcher_for(sweep)


def ended_study(sweep_file):
    """Four trials over lr in [0.01, 0.1] and loss in {ce, focal}: two finished, one pruned, one failed."""
    sweep, first, _, _ = searcher(
        sweep_file, "a.yaml", loss={"name": {"choice": ["ce", "focal"]}}, optimizer={"lr": {"loguniform": [0.01, 0.1]}},
        train={"epochs": 2}, search={"num_samples": 4, "scheduler": "none"},
    )
    configs = drain(first)
    finish(first, "t0", 0.5)
    finish(first, "t1", 0.7)
    first.on_trial_result("t2", {"epoch": 1, "val/macro_f1": 0.1})
    first.on_trial_complete("t2", {"epoch": 1, "val/macro_f1": 0.1})  # stopped at epoch 1: pruned
    first.on_trial_complete("t3", None, error=True)
    return sweep, pickle.loads(pickle.dumps(first.__getstate__())), configs


def test_every_ended_trial_is_carried_under_the_widened_space(sweep_file):
    before, state, configs = ended_study(sweep_file)
    after, new, _, _ = searcher(
        sweep_file, "b.yaml", loss={"name": {"choice": ["ce", "focal", "ldam"]}}, optimizer={"lr": {"loguniform": [1e-4, 1.0]}},
        train={"epochs": 2}, search={"num_samples": 3, "scheduler": "none", "seed": 1},
    )
    assert new.seed_from(state) == []
    trials = new.study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
    assert [t.values for t in trials[:2]] == [[0.5], [0.7]]
    assert trials[2].intermediate_values == {1: 0.1}
    assert [t.values for t in trials[2:]] == [t.values for t in state["study"].trials[2:]]
    assert [t.user_attrs[TUNE_IDS_ATTR] for t in trials] == [["t0"], ["t1"], ["t2"], ["t3"]]
    assert [t.params["optimizer.lr"] for t in trials] == [c["optimizer.lr"] for c in configs]
    assert new.carried == {"t0": 0, "t1": 1, "t2": 2, "t3": 3}
    # the new trials come from the new space, and are the searcher's own
    got = drain(new)
    assert len(got) == 3 and all(1e-4 <= c["optimizer.lr"] <= 1.0 for c in got)
    assert len(new.study.trials) == 7
    finish(new, "t0", 0.9)  # a new segment's trial ids are its own: no clash with the carried ones
    assert new.study.trials[4].state == TrialState.COMPLETE
    # a further extension carries all seven, the first four through the second study
    _, third, _, _ = searcher(
        sweep_file, "c.yaml", loss={"name": {"choice": ["ce", "focal", "ldam"]}}, optimizer={"lr": {"loguniform": [1e-4, 1.0]}},
        train={"epochs": 2}, search={"num_samples": 1, "scheduler": "none"},
    )
    third.seed_from(pickle.loads(pickle.dumps(new.__getstate__())))
    assert [t.user_attrs[PARAMS_ATTR]["optimizer.lr"] for t in third.study.trials[:4]] == [c["optimizer.lr"] for c in configs]
    assert "optimizer.lr" in space_changes(before, after) and "loss.name" in space_changes(before, after)


def test_a_trial_outside_a_narrowed_space_is_left_out_and_named(sweep_file):
    _, state, configs = ended_study(sweep_file)
    low = min(c["optimizer.lr"] for c in configs)
    _, new, _, _ = searcher(
        sweep_file, "b.yaml", loss={"name": {"choice": ["ce"]}}, optimizer={"lr": {"loguniform": [low, 0.1]}},
        train={"epochs": 2}, search={"num_samples": 1, "scheduler": "none"},
    )
    left_out = new.seed_from(state)
    focal = [f"t{i}" for i, c in enumerate(configs) if c["loss.name"] == "focal"]
    assert len(left_out) == len(focal) and all(any(line.startswith(t) for line in left_out) for t in focal), (left_out, configs)
    assert all("loss.name='focal'" in line for line in left_out)
    assert len(new.study.trials) == 4 - len(focal)
