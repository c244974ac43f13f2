"""The held-out test split, without Ray: which sources have one, reading it apart from the
training data, and a trainer checkpoint's evaluation on it."""

import numpy as np
import pytest
import torch

from raysweep.config import load_sweep
from raysweep.errors import ConfigError
from tests.conftest import REPO, tiny_config
from tests.trainables import data_factory as make
from trainables.data.check import check_data
from trainables.data.sources import load_samples
from trainables.deploy import deployed_model, raw_pixels
from trainables.heldout import evaluate, load_test_samples
from trainables.session import LocalSession
from trainables.trainer import Trainer


def cifar_sweep(sweep_file, root, **data):
    return load_sweep(sweep_file(tiny_config(
        data={"kind": "torchvision", "name": "CIFAR100", "root": str(root), "official_test": True, "strategy": "plain", "loader_workers": 0, **data},
        train={"epochs": 1, "batch_size": 32},
    )))


def test_the_official_test_split_is_read_apart_from_the_training_file(sweep_file, tmp_path, monkeypatch):
    root = make.fake_cifar100(tmp_path, 200, 50, monkeypatch=monkeypatch)
    cfg = cifar_sweep(sweep_file, root).config
    train, test = load_samples(cfg.data), load_test_samples(cfg.data, list(load_samples(cfg.data).classes))
    assert np.array_equal(np.stack([train.images.load(i) for i in range(200)]), make.cifar_rows(root, "train"))
    assert np.array_equal(np.stack([test.images.load(i) for i in range(50)]), make.cifar_rows(root, "test"))
    assert list(test.labels) == [k % 100 for k in range(50)] and test.classes == train.classes
    summary = check_data(cfg)
    assert (summary.samples, summary.test) == (200, 50) and "50 test (held out)" in str(summary)


def test_the_nycu_recipe_reads_cifar100s_official_test_split(tmp_path, monkeypatch):
    root = make.fake_cifar100(tmp_path, 200, 50, monkeypatch=monkeypatch)
    sweep = load_sweep(REPO / "search_spaces" / "cifar100_losses.yaml", [f"data.root={root}"])
    assert sweep.config.data.official_test
    test = load_test_samples(sweep.config.data, list(load_samples(sweep.config.data).classes))
    assert len(test) == 50 and np.array_equal(test.images.load(7), make.cifar_rows(root, "test")[7])


def test_a_checkpoint_is_evaluated_as_the_deployed_model_predicts(sweep_file, tmp_path, monkeypatch):
    root = make.fake_cifar100(tmp_path, 200, 50, monkeypatch=monkeypatch)
    cfg = cifar_sweep(sweep_file, root).config
    session = LocalSession(tmp_path / "run", device="cpu")
    Trainer(cfg, session).fit()
    record = evaluate(session.checkpoints[-1], cfg.data)
    images = make.cifar_rows(root, "test")
    with torch.no_grad():
        probs = deployed_model(session.checkpoints[-1])(torch.from_numpy(raw_pixels(images, 255.0))).numpy()
    labels = np.arange(50) % 100
    assert record["samples"] == 50 and record["folds"] == 1
    assert record["metrics"]["accuracy"] == pytest.approx(float(np.mean(probs.argmax(1) == labels)))
    assert record["metrics"]["loss"] == pytest.approx(float(-np.mean(np.log(probs[np.arange(50), labels]))), rel=1e-4)


def test_a_held_out_manifest_keeps_the_training_classes(sweep_file, tmp_path):
    train = make.csv_manifest(tmp_path, [(f"img/{k}.png", "abc"[k % 3]) for k in range(12)], name="train.csv")
    test = make.csv_manifest(tmp_path, [(f"img/t{k}.png", "c") for k in range(3)], name="test.csv")
    cfg = load_sweep(sweep_file(tiny_config(data={"kind": "csv", "path": str(train), "root": str(tmp_path), "test_path": str(test), "strategy": "plain"}))).config
    samples = load_test_samples(cfg.data, ["a", "b", "c"])
    assert samples.classes == ["a", "b", "c"] and list(samples.labels) == [2, 2, 2]


@pytest.mark.parametrize("data, expected", [
    ({"official_test": True}, "data.official_test: only torchvision datasets ship an official test split; for data.kind 'synthetic' give data.test_path"),
    ({"test_path": "x.csv"}, "data.test_path: a held-out test file is read for data.kind csv, pixel_table, channel_files, image_folder, not 'synthetic'"),
])
def test_a_test_split_the_source_cannot_have_is_refused(sweep_file, data, expected):
    with pytest.raises(ConfigError) as e:
        load_sweep(sweep_file(tiny_config(data=data)))
    assert e.value.line().endswith(expected)
