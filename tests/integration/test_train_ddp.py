"""Ray Train DDP runs on the session's Ray instance."""

import json

import pytest

from raysweep.cli import main as cli_main
from raysweep.config import load_sweep
from tests.conftest import REPO, tiny_config
from trainables.checkpoint import load_state
from trainables.launch import build_trainer
from trainables.metrics import classification_metrics, nll
from trainables.session import LocalSession
from trainables.trainer import Trainer

pytestmark = pytest.mark.ray


def test_two_worker_metrics_equal_a_single_process_evaluation(ray_session, sweep_file, tmp_path):
    # 97 samples: 25 validation samples, which two workers' DistributedSampler pads to 26
    cfg = load_sweep(sweep_file(tiny_config(data={"num_samples": 97}, train={"epochs": 2, "batch_size": 8}, resources={"workers": 2}))).config
    result = build_trainer(cfg, name="ddp-exact", storage_path=str(tmp_path)).fit()
    reported = result.metrics
    assert reported["epoch"] == 2

    local = Trainer(cfg, LocalSession(tmp_path / "local"))
    assert len(local.folds[0].val_set) == 25
    with result.checkpoint.as_directory() as d:
        local.folds[0].module.load_state_dict(load_state(d)["folds"][0]["model"])
    targets, scores = local.folds[0].predict()
    assert len(targets) == 25
    expected = classification_metrics(local.samples.task, targets, scores, local.samples.classes)
    for key in ("accuracy", "macro_f1", "weighted_f1", "f1/0", "precision/1", "recall/2"):
        assert reported[f"val/{key}"] == pytest.approx(expected[key], abs=1e-12), key
    assert reported["val/loss"] == pytest.approx(nll(local.samples.task, targets, scores), rel=1e-5)


def test_quickstart_reaches_095_macro_f1_with_two_workers(ray_session, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = cli_main(["train", str(REPO / "search_spaces" / "quickstart.yaml"), "--workers", "2", "--json"])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    final = json.loads(last)
    assert set(final) == {"val/macro_f1", "val/accuracy", "val/loss", "epoch"}
    assert final["val/macro_f1"] >= 0.95
    assert final["epoch"] == 12
