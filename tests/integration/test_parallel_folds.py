"""Per-trial cross-validation with the folds trained at once (`search.cv.parallel`): one Ray
Train run of two workers, a fold each, against the lockstep trial of one worker."""

import json

import pytest

from raysweep.config import load_sweep
from tests.conftest import tiny_config
from trainables.launch import build_trainer

pytestmark = [pytest.mark.ray, pytest.mark.slow]  # two Train runs: ~30 s idle, minutes under load

EPOCHS = 3


def two_fold_cfg(sweep_file):
    # enough images that an epoch outlasts the workers' skew (~0.5 s of training per fold)
    return load_sweep(sweep_file(tiny_config(
        data={"num_samples": 1200, "folds": 2}, train={"epochs": EPOCHS, "batch_size": 16, "seed": 3},
        resources={"workers": 1, "cpus_per_worker": 1}, search={"cv": {"mode": "per_trial"}},
    ))).config


def newest_meta(result) -> dict:
    with result.checkpoint.as_directory() as d:
        return json.loads(open(f"{d}/meta.json").read())


def test_two_folds_on_two_workers_train_at_once_and_match_lockstep(ray_session, sweep_file, tmp_path):
    cfg = two_fold_cfg(sweep_file)
    parallel = build_trainer(cfg, name="parallel", storage_path=str(tmp_path), fold_groups=2).fit()
    lockstep = build_trainer(cfg, name="lockstep", storage_path=str(tmp_path), fold_groups=1).fit()
    par, lock = newest_meta(parallel), newest_meta(lockstep)

    # at once: in every epoch after the first (whose start waits on each worker's start-up) the
    # two folds' training spans overlap; in lockstep one ends before the other starts
    for epoch in par["trained"][1:]:
        (s0, e0), (s1, e1) = epoch["folds"]
        assert max(s0, s1) < min(e0, e1), epoch
    for epoch in lock["trained"]:
        (s0, e0), (s1, e1) = epoch["folds"]
        assert e0 <= s1, epoch

    # the same folds, trained the same: every epoch's per-fold metrics, and their mean and spread
    assert [h["epoch"] for h in par["history"]] == [h["epoch"] for h in lock["history"]] == list(range(1, EPOCHS + 1))
    keys = [f"fold{k}/val/{m}" for k in (0, 1) for m in ("loss", "accuracy", "macro_f1")] + ["val/macro_f1", "val/macro_f1_std", "train/loss"]
    for p, q in zip(par["history"], lock["history"]):
        for key in keys:
            assert p[key] == pytest.approx(q[key], abs=1e-6), (p["epoch"], key, p[key], q[key])
    assert par["history"][-1]["fold0/val/loss"] != par["history"][-1]["fold1/val/loss"]  # two folds, not one twice
