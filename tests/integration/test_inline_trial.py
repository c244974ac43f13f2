"""`resources.inline: true`: a one-worker trial trained in its Tune trial actor, without
a Ray Train worker group. It must train, checkpoint and resume exactly as a trial of
one Train worker does."""

import json
import sys

import pytest

from raysweep.config import load_sweep
from raysweep.errors import ConfigError
from raysweep.sweep.checkpoints import trial_checkpoints
from raysweep.sweep.experiment import run_sweep
from raysweep.sweep.plan import TRIAL_RESOURCES
from raysweep.sweep.results import read_trials
from raysweep.sweep.trial import trial_resources
from raysweep.sweep.layout import SweepLayout
from tests.conftest import tiny_config, write_yaml
from tests.fixtures.cli import RaysweepProcess
from trainables.session import TrialStopped
from trainables.tune_session import CHECKPOINT_PATH_KEY, TuneSession
from trainables.trainer import Trainer

EPOCHS = 3


def one_trial(sweep_file, name, **resources):
    return load_sweep(sweep_file(tiny_config(
        name=name,
        train={"epochs": EPOCHS, "batch_size": 16},
        resources={"workers": 1, "cpus_per_worker": 1, **resources},
        search={"algorithm": "grid"},
    ), name=f"{name}.yaml"))


def history(layout, trial_id):
    logdir = next(n for n in layout.listdir() if n == trial_id or n.startswith(f"{trial_id}_"))  # trial_dirname
    return [json.loads(line) for line in layout.read_text(f"{logdir}/result.json").splitlines() if line.strip()]


@pytest.mark.ray
def test_inline_trial_trains_checkpoints_and_matches_a_train_worker_trial(ray_session, sweep_file, tmp_path):
    outcomes = {}
    for name, inline in (("worker", False), ("inline", True)):
        outcome = run_sweep(one_trial(sweep_file, name, inline=inline), storage=str(tmp_path / "results"), name=name)
        rows, _, _ = read_trials(outcome.layout)
        assert [(r.status, r.epochs_done) for r in rows] == [("TERMINATED", EPOCHS)]
        outcomes[name] = (outcome.layout, rows[0])

    layout, row = outcomes["inline"]
    kept = trial_checkpoints(layout.train_storage, row.trial_id)  # where Train keeps a trial's checkpoints
    assert 1 <= len(kept) <= 2 and max(meta["epoch"] for _, meta in kept) == EPOCHS  # the best and the latest
    assert row.checkpoint is not None  # `raysweep report` finds the best one
    inline_results = history(layout, row.trial_id)
    assert all(r[CHECKPOINT_PATH_KEY].startswith(layout.train_storage) for r in inline_results)

    worker_layout, worker_row = outcomes["worker"]
    worker_results = history(worker_layout, worker_row.trial_id)
    for key in ("train/loss", "val/loss", "val/macro_f1", "val/accuracy"):  # same seed, same numbers
        assert [r[key] for r in inline_results] == pytest.approx([r[key] for r in worker_results], rel=1e-6), key


class Interrupted(Exception):
    pass


class StopAfter:
    """A trainer listener that kills the run after `epoch` (as a lost driver would)."""

    def __init__(self, last):
        self.last = last

    def start(self, trainer, first_epoch):
        pass

    def epoch(self, metrics):
        if metrics["epoch"] == self.last:
            raise Interrupted()

    def finish(self, metrics, error):
        pass


def test_inline_trial_resumes_from_its_latest_checkpoint(sweep_file, tmp_path):
    cfg = one_trial(sweep_file, "resume", inline=True).config
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 4})})

    def session(storage, reports):
        return TuneSession(str(tmp_path / storage), cfg.search.primary_metric, cfg.search.primary_mode, report=reports.append, device="cpu")

    straight = []
    Trainer(cfg, session("straight", straight)).fit()

    first, second = [], []
    with pytest.raises(Interrupted):
        Trainer(cfg, session("resumed", first), listeners=[StopAfter(2)]).fit()
    resumed = session("resumed", second)
    assert resumed.latest() == "checkpoint_000002"
    Trainer(cfg, resumed).fit()

    assert [r["epoch"] for r in first + second] == [1, 2, 3, 4]
    for key in ("train/loss", "val/loss", "val/macro_f1"):
        assert [r[key] for r in first + second] == pytest.approx([r[key] for r in straight], rel=1e-6), key
    kept = sorted(p.name for p in (tmp_path / "resumed").iterdir())
    assert "checkpoint_000004" in kept and len(kept) <= 2  # the latest and the best, nothing half-written


class Recorder:
    """A trainer listener that keeps how the trainer ended."""

    def start(self, trainer, first_epoch):
        pass

    def epoch(self, metrics):
        pass

    def finish(self, metrics, error):
        self.finished = (metrics.get("epoch"), error)


def tune_stops_after(epoch, reports):
    """`ray.tune.report` of a trial Tune stops at `epoch`: Ray ends the trial's thread with sys.exit(0)."""

    def report(metrics):
        reports.append(metrics)
        if metrics["epoch"] == epoch:
            sys.exit(0)

    return report


def test_a_trial_tune_stops_ends_quietly_and_its_listeners_hear_no_error(sweep_file, tmp_path):
    cfg = one_trial(sweep_file, "stopped", inline=True).config
    reports, recorder = [], Recorder()
    session = TuneSession(str(tmp_path / "t"), cfg.search.primary_metric, cfg.search.primary_mode, report=tune_stops_after(1, reports), device="cpu")
    with pytest.raises(SystemExit) as stop:
        Trainer(cfg, session, listeners=[recorder]).fit()
    assert isinstance(stop.value, TrialStopped) and stop.value.code == 0  # what Tune's thread ends quietly on
    assert [r["epoch"] for r in reports] == [1] and recorder.finished == (1, None)


def test_a_real_exit_or_error_in_report_is_still_an_error(sweep_file, tmp_path):
    cfg = one_trial(sweep_file, "failed", inline=True).config

    def failing(metrics):
        sys.exit(3)

    recorder = Recorder()
    session = TuneSession(str(tmp_path / "t"), cfg.search.primary_metric, cfg.search.primary_mode, report=failing, device="cpu")
    with pytest.raises(SystemExit) as stop:
        Trainer(cfg, session, listeners=[recorder]).fit()
    assert not isinstance(stop.value, TrialStopped) and recorder.finished == (None, "SystemExit: 3")


@pytest.mark.slow
def test_an_inline_sweep_whose_trial_asha_prunes_prints_no_traceback(tmp_path):
    """Trials one at a time, so the second (a learning rate that cannot learn) is judged against
    the first and stopped at epoch 1."""
    write_yaml(tmp_path / "sweep.yaml", tiny_config(
        name="pruned", train={"epochs": 3}, optimizer={"lr": {"grid": [0.1, 1e-6]}},
        resources={"inline": True, "cpus_per_worker": 0.5, "max_concurrent": 1},
        search={"algorithm": "grid", "scheduler": "asha", "grace_period": 1, "reduction_factor": 2},
        tracking={"enabled": True},
    ))
    proc = RaysweepProcess(["run", "sweep.yaml", "--storage", str(tmp_path / "results")], cwd=tmp_path)
    assert proc.wait(300) == 0, proc.output()[-4000:]
    out = proc.output()
    layout = SweepLayout.find("pruned", storage=str(tmp_path / "results"))
    rows, _, _ = read_trials(layout)
    assert sorted(r.epochs_done for r in rows) == [1, 3], out[-4000:]  # one trial pruned at epoch 1
    assert "Traceback" not in out and "SystemExit" not in out, out[-6000:]


def test_inline_needs_one_worker_and_takes_the_workers_resources(sweep_file):
    with pytest.raises(ConfigError, match="resources.inline: needs workers: 1"):
        one_trial(sweep_file, "two", inline=True, workers=2)
    assert trial_resources(one_trial(sweep_file, "inline", inline=True, cpus_per_worker=2).config) == {"CPU": 2}
    assert trial_resources(one_trial(sweep_file, "worker", inline=False).config) == TRIAL_RESOURCES


def test_one_worker_trials_are_inline_by_default_and_ddp_trials_are_train_runs(sweep_file):
    assert one_trial(sweep_file, "default").config.resources.inline is True
    assert trial_resources(one_trial(sweep_file, "default", cpus_per_worker=2).config) == {"CPU": 2}
    assert one_trial(sweep_file, "ddp", workers=2).config.resources.inline is False
    assert trial_resources(one_trial(sweep_file, "ddp", workers=2).config) == TRIAL_RESOURCES
