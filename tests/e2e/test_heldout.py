"""The report's own protocol on a CIFAR-100-layout sweep: select on validation, then evaluate
the best trial once on the official test split, and record it (leaderboard, MLflow parent run,
`raysweep report`); no test sample reaches training or selection.

The data is a tiny CIFAR-100 in torchvision's `cifar-100-python` layout. Its checksums are not
the real archive's: this process trusts them through monkeypatch, the Ray workers through a
`worker_process_setup_hook`, so this module starts a Ray instance of its own."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import torch

from raysweep.config import load_sweep
from raysweep.sweep.checkpoints import download
from raysweep.sweep.experiment import run_sweep
from raysweep.sweep.results import read_test_result, read_trials
from tests.conftest import REPO, tiny_config
from tests.trainables import data_factory as make
from trainables.data.sources import load_samples
from trainables.deploy import deployed_model, raw_pixels
from trainables.checkpoint_files import PREDICTIONS_FILE, SPLITS_FILE

pytestmark = [pytest.mark.slow, pytest.mark.ray]

N_TRAIN, N_TEST = 200, 50


@pytest.fixture
def cifar_ray(tmp_path, monkeypatch):
    """A fake CIFAR-100 under tmp_path, trusted here and in every Ray worker of a Ray instance
    started for this test (the session's own, if up, is restarted afterwards as it was)."""
    import ray

    root = make.fake_cifar100(tmp_path, N_TRAIN, N_TEST, monkeypatch=monkeypatch)
    was_up = ray.is_initialized()
    ray.shutdown()
    ray.init(
        num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
        runtime_env={
            "worker_process_setup_hook": "tests.trainables.data_factory.trust_fake_cifar100",
            # the hook lives in this repository's tests, which Ray's workers import from its root
            "env_vars": {make.FAKE_CIFAR100_ENV: make.fake_cifar100_checksums(root),
                         "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)},
        },
    )
    yield root
    ray.shutdown()
    if was_up:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)


def test_the_best_trial_is_evaluated_once_on_the_official_test_split(cifar_ray, sweep_file, tmp_path, capsys):
    from mlflow import MlflowClient

    root = cifar_ray
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = load_sweep(sweep_file(tiny_config(
        name="cifar",
        data={"kind": "torchvision", "name": "CIFAR100", "root": str(root), "official_test": True, "val_fraction": 0.25, "strategy": "plain", "loader_workers": 0},
        model={"name": "tiny_cnn", "kwargs": {"widths": [4, 8]}},
        optimizer={"name": "sgd", "lr": {"grid": [0.01, 0.2]}},
        train={"epochs": 2, "batch_size": 32},
        resources={"workers": 1, "cpus_per_worker": 0.5, "inline": True},
        search={"algorithm": "grid", "metric": "val/accuracy", "mode": "max"},
        tracking={"enabled": True, "uri": uri},
    )))
    outcome = run_sweep(sweep, storage=str(tmp_path / "results"), name="cifar")
    layout = outcome.layout
    rows, metric, _ = read_trials(layout)
    assert len(rows) == 2 and all(r.metric is not None for r in rows)

    # the record: the best trial by validation, its selected checkpoint, every test sample
    test = read_test_result(layout)
    assert test["trial_id"] == rows[0].trial_id and test["checkpoint"] == rows[0].checkpoint
    assert test["selected_on"] == "val/accuracy" and test["selected_value"] == rows[0].metric
    assert test["samples"] == N_TEST and test["split"] == "CIFAR100 official test split"

    # the figure is the selected checkpoint's accuracy on the test pickles, computed here apart
    test_images = make.cifar_rows(root, "test")
    model = deployed_model(download(rows[0].checkpoint))
    with torch.no_grad():
        predicted = model(torch.from_numpy(raw_pixels(test_images, 255.0))).argmax(1).numpy()
    assert test["metrics"]["accuracy"] == pytest.approx(float(np.mean(predicted == np.arange(N_TEST) % 100)))

    # no test sample reached training or selection: every trial trained and validated on the
    # training file's samples only, and those are the `train` pickle's, none of the `test` pickle's
    seen = load_samples(sweep.config.data)  # what each trial's trainer loads
    train_images = make.cifar_rows(root, "train")
    assert len(seen) == N_TRAIN and np.array_equal(np.stack([seen.images.load(i) for i in range(N_TRAIN)]), train_images)
    test_set = {img.tobytes() for img in test_images}
    assert not any(img.tobytes() in test_set for img in train_images)
    for row in rows:
        ckpt = download(row.checkpoint)
        with np.load(ckpt / SPLITS_FILE) as s, np.load(ckpt / PREDICTIONS_FILE) as p:
            assignment = s["assignment"][0]
            assert assignment.shape == (N_TRAIN,) and set(np.unique(assignment)) == {0, 1}
            assert len(p["targets_0"]) == int((assignment == 1).sum()) == N_TRAIN // 4  # selection judged these

    # recorded: leaderboard column (the best trial's only), MLflow parent and best run, report
    client = MlflowClient(uri)
    parent = client.get_run(layout.manifest()["mlflow_parent_run_id"])
    assert parent.data.metrics["test/accuracy"] == pytest.approx(test["metrics"]["accuracy"])
    assert parent.data.tags["raysweep.test_trial"] == rows[0].trial_id
    best_run = client.get_run(parent.data.tags["raysweep.best_run_id"])
    assert best_run.data.metrics["test/accuracy"] == pytest.approx(test["metrics"]["accuracy"])
    other = client.get_run(rows[1].mlflow_run_id)
    assert not any(k.startswith("test/") for k in other.data.metrics)
    leaderboard = client.download_artifacts(parent.info.run_id, "leaderboard.csv")
    board = list(csv.DictReader(open(leaderboard)))
    assert [float(b["test_metric"]) if b["test_metric"] else None for b in board] == [pytest.approx(test["metrics"]["accuracy"]), None]

    from raysweep.commands.report import report

    capsys.readouterr()
    report(layout, as_json=True)
    out = capsys.readouterr().out
    assert f"test split (CIFAR100 official test split, {N_TEST} samples, never used for selection): best trial {rows[0].trial_id}" in out
    assert json.loads(out.strip().splitlines()[-1])["test"]["metrics"]["accuracy"] == pytest.approx(test["metrics"]["accuracy"])
