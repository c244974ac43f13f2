"""A Tune trial's folder name: its id, then each searched value whole (no Ray)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from raysweep.sweep.trial import MAX_DIRNAME, trial_dirname


def dirname(config: dict, trial_id: str = "c5e3a_00001") -> str:
    return trial_dirname(SimpleNamespace(trial_id=trial_id, config=config))


@pytest.mark.parametrize(
    "config, expected",
    [
        ({}, "c5e3a_00001"),
        ({"train.batch_size": 16}, "c5e3a_00001_batch_size=16"),  # Tune's own name: batch_size=1_
        ({"optimizer.lr": 0.0031622776601683794, "loss.name": "focal"}, "c5e3a_00001_lr=0.003162,name=focal"),
        ({"model.name": "resnet18", "loss.name": "ce"}, "c5e3a_00001_model.name=resnet18,loss.name=ce"),  # leaves alike: told apart
        ({"optimizer.weight_decay": -1e-05, "model.kwargs.widths": [4, 8]}, "c5e3a_00001_weight_decay=-1e-05,widths=4-8"),
        ({"data.fold": 2, "loss.gamma": None}, "c5e3a_00001_fold=2,gamma=None"),
        ({"optimizer": {"lr": 0.1}}, "c5e3a_00001_lr=0.1"),  # nested, should Tune ever hand it so
        ({"data.root": "/data/a b:c*?"}, "c5e3a_00001_root=data-a-b-c"),
    ],
)
def test_a_trial_folder_shows_each_searched_value_whole(config, expected):
    assert dirname(config) == expected


def test_a_value_that_does_not_fit_is_left_out_not_cut():
    config = {"model.name": "m" * 70, "data.root": "r" * 30, "optimizer.lr": 0.01, "train.batch_size": 128}
    name = dirname(config)
    assert name == f"c5e3a_00001_name={'m' * 70},lr=0.01"  # root did not fit, lr did, batch_size did not
    assert len(name) <= MAX_DIRNAME
    assert dirname({"model.name": "m" * 200}) == "c5e3a_00001"


def test_every_name_is_one_safe_path_component():
    config = {f"section{i}.key{i}": value for i, value in enumerate([0.1, "a/b", "..", "C:\\x", "", ["x", 1], True, 1e-300])}
    name = dirname(config)
    assert re.fullmatch(r"[A-Za-z0-9._+=,-]+", name) and len(name) <= MAX_DIRNAME
    assert name.startswith("c5e3a_00001_")
