"""The training loop in one process (no Ray): metrics, checkpoints, resume."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from raysweep.config import load_sweep
from tests.conftest import tiny_config
from trainables.checkpoint import load_state
from trainables.session import LocalSession
from trainables.trainer import Trainer


def config(sweep_file, **sections):
    return load_sweep(sweep_file(tiny_config(**sections))).config


class Interrupted(Exception):
    pass


class StopAfter(LocalSession):
    """A session whose process 'dies' right after reporting epoch `n`."""

    def __init__(self, n, **kw):
        super().__init__(**kw)
        self.n = n

    def report(self, metrics, checkpoint_dir):
        super().report(metrics, checkpoint_dir)
        if metrics["epoch"] == self.n:
            raise Interrupted


def test_trains_and_reports_every_epoch_with_a_checkpoint(sweep_file, tmp_path):
    cfg = config(sweep_file, train={"epochs": 3})
    session = LocalSession(tmp_path)
    final = Trainer(cfg, session).fit()
    assert [r["epoch"] for r in session.results] == [1, 2, 3]
    for key in ("train/loss", "val/loss", "val/accuracy", "val/macro_f1", "val/f1/0", "val/precision/2", "val/recall/1", "lr", "images_per_s"):
        assert key in final
    assert final["val/macro_f1"] > 0.8  # synthetic prototypes are easy
    state = load_state(session.checkpoints[-1])
    assert state["epoch"] == 2 and len(state["history"]) == 3
    assert state["best"]["metric"] == "val/macro_f1"


@pytest.mark.parametrize("sections", [
    {},
    {"data": {"task": "multilabel"}, "loss": {"name": "bce"}, "train": {"tune_threshold": True}},
    {"data": {"folds": 2}, "search": {"cv": {"mode": "per_trial"}}},
])
def test_the_keys_reported_are_those_reported_metrics_names(sweep_file, tmp_path, sections):
    """`search.metric` is checked against `reported_metrics` (trainables.checks): it must name
    exactly what an epoch reports, per-class keys from the data's classes."""
    from trainables.metric_names import reported_metrics

    cfg = config(sweep_file, **{"train": {"epochs": 1}, **sections})
    trainer = Trainer(cfg, LocalSession(tmp_path))
    final = trainer.fit()
    names = reported_metrics(cfg, trainer.samples.task, trainer.samples.classes)
    assert set(final) == names, (set(final) ^ names)
    assert {"val/f1/0", "val/recall/2"} <= names and "val/f1/3" not in names
    assert names <= reported_metrics(cfg, "auto", trainer.samples.classes)  # what the file's `task: auto` is checked against


def test_resume_continues_the_epoch_count_and_matches_an_uninterrupted_run(sweep_file, tmp_path):
    cfg = config(sweep_file, train={"epochs": 4}, scheduler={"name": "cosine"}, augment={"preset": "light"})
    straight = LocalSession(tmp_path / "a")
    straight_trainer = Trainer(cfg, straight)
    straight_trainer.fit()

    first = StopAfter(2, storage=tmp_path / "b")
    with pytest.raises(Interrupted):
        Trainer(cfg, first).fit()
    interrupted_at = time.time()
    resumed = LocalSession(tmp_path / "c", resume_from=first.checkpoints[-1])
    resumed_trainer = Trainer(cfg, resumed)
    resumed_trainer.fit()

    assert [r["epoch"] for r in resumed.results] == [3, 4]
    # each epoch's provenance travels with the checkpoint: the first two from the first run
    trained = json.loads((resumed.checkpoints[-1] / "meta.json").read_text())["trained"]
    assert [t["epoch"] for t in trained] == [1, 2, 3, 4]
    assert [t["at"] < interrupted_at for t in trained] == [True, True, False, False]
    a = straight_trainer.folds[0].module.state_dict()
    b = resumed_trainer.folds[0].module.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.results[-1]["val/loss"] == straight.results[-1]["val/loss"]
    assert resumed.results[-1]["lr"] == straight.results[-1]["lr"]


def test_a_finished_run_reports_its_last_result_again_when_resumed(sweep_file, tmp_path):
    cfg = config(sweep_file, train={"epochs": 2})
    done = LocalSession(tmp_path / "a")
    Trainer(cfg, done).fit()
    again = LocalSession(tmp_path / "b", resume_from=done.checkpoints[-1])
    Trainer(cfg, again).fit()
    assert len(again.results) == 1 and again.results[0]["epoch"] == 2
    assert again.results[0] == done.results[-1]


def test_diverging_loss_stops_at_once_with_the_reason(sweep_file, tmp_path):
    cfg = config(sweep_file, optimizer={"lr": 1e30, "momentum": 0.0}, train={"epochs": 3})
    session = LocalSession(tmp_path)
    out = Trainer(cfg, session).fit()
    assert out["diverged"] == 1
    assert "training loss became" in out["error"]
    assert session.results[-1]["diverged"] == 1
    assert not session.checkpoints or len(session.checkpoints) < 3


def test_accumulation_steps_the_optimizer_once_per_group(sweep_file, tmp_path):
    # 96 samples, 75% train = 72, batch 8 -> 9 micro-batches; accumulate 4 -> 3 optimizer steps
    cfg = config(sweep_file, train={"epochs": 1, "batch_size": 8, "accumulate": 4}, optimizer={"name": "adam", "lr": 0.01})
    trainer = Trainer(cfg, LocalSession(tmp_path))
    trainer.fit()
    opt_state = trainer.folds[0].optimizer.state_dict()["state"]
    steps = {int(s["step"]) for s in opt_state.values()}
    assert steps == {3}


def test_checkpoint_loads_with_weights_only(sweep_file, tmp_path):
    cfg = config(sweep_file, train={"epochs": 1})
    session = LocalSession(tmp_path)
    Trainer(cfg, session).fit()
    state = torch.load(Path(session.checkpoints[0]) / "state.pt", weights_only=True)
    assert "model" in state["folds"][0]
    preds = np.load(Path(session.checkpoints[0]) / "predictions.npz")
    assert preds["scores_0"].shape[1] == 3


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_amp_asked_for_on_a_cpu_worker_is_said_to_be_off_once_per_trial(sweep_file, tmp_path, capsys, amp):
    cfg = config(sweep_file, train={"epochs": 1, "amp": amp}, data={"folds": 2}, search={"cv": {"mode": "per_trial"}})
    trainer = Trainer(cfg, LocalSession(tmp_path))
    trainer.fit()
    assert len(trainer.folds) == 2 and not any(f.use_amp for f in trainer.folds)
    assert capsys.readouterr().out.splitlines().count(f"AMP ({amp}) is off: no GPU on this worker") == 1


def test_no_amp_line_without_amp_or_off_the_main_worker(sweep_file, tmp_path, capsys):
    Trainer(config(sweep_file, train={"epochs": 1}), LocalSession(tmp_path / "a"))
    second = LocalSession(tmp_path / "b")
    second.rank = 1
    Trainer(config(sweep_file, train={"epochs": 1, "amp": "fp16"}), second)
    assert "AMP" not in capsys.readouterr().out
