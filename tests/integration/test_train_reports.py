"""A Train run under a Tune trial hands every report to Tune, however late Tune asks.

With Ray's own bridge (`TuneReportCallback`), a driver slow to ask for the next result (here a
Tune callback that sleeps after the second result, longer than the Train run takes to end)
left the trial actor waiting forever on its last result: the sweep hung with the last epoch
unreported (`raysweep.sweep.train_reports`)."""

import json
import tempfile
import time
from pathlib import Path

import pytest

from raysweep.sweep.train_reports import TrainReports, fit_reporting
from trainables.report_keys import CHECKPOINT_PATH_KEY, CONTROLLER_KEY

pytestmark = pytest.mark.ray

EPOCHS = 3
LATE_S = 8.0  # the Train run (health checks every 2 s by Ray's default) ends well within this


def loop(config):
    import ray.train

    for epoch in range(1, EPOCHS + 1):
        if epoch == config.get("fail_at"):
            raise RuntimeError(f"the loop failed at epoch {epoch}")
        if epoch == EPOCHS:  # the last report carries a checkpoint, as every raysweep epoch does
            with tempfile.TemporaryDirectory() as d:
                (Path(d) / "meta.json").write_text(json.dumps({"epoch": epoch}))
                ray.train.report({"epoch": epoch}, checkpoint=ray.train.Checkpoint.from_directory(d))
        else:
            ray.train.report({"epoch": epoch})


def trial(config):
    from ray import tune
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.v2.api.data_parallel_trainer import DataParallelTrainer

    reports = TrainReports()
    trainer = DataParallelTrainer(
        loop,
        train_loop_config=config,
        scaling_config=ScalingConfig(num_workers=1, resources_per_worker={"CPU": 0.5}),
        run_config=RunConfig(
            name=tune.get_context().get_trial_id(), storage_path=config["storage"], callbacks=[reports], failure_config=FailureConfig(max_failures=0)
        ),
    )
    fit_reporting(trainer, reports)


def run(tmp_path, **config):
    from ray import tune

    class LateDriver(tune.Callback):
        """Asks for the next result only once the Train run has ended (a busy driver)."""

        def __init__(self):
            self.results = []

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self.results.append(result)
            if result["epoch"] == EPOCHS - 1:
                time.sleep(LATE_S)

    late = LateDriver()
    tuner = tune.Tuner(
        trial,
        param_space={"storage": str(tmp_path / "train"), **config},
        run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), callbacks=[late]),
    )
    return tuner.fit(), late.results


@pytest.mark.timeout(180)
def test_the_last_report_of_a_train_run_reaches_a_late_driver(ray_session, tmp_path):
    grid, results = run(tmp_path)
    assert not grid.errors
    assert [r["epoch"] for r in results] == [1, 2, 3]
    assert all(r[CONTROLLER_KEY] == results[0][CONTROLLER_KEY] for r in results)
    checkpoint = Path(results[-1][CHECKPOINT_PATH_KEY])
    assert json.loads((checkpoint / "meta.json").read_text()) == {"epoch": EPOCHS}
    assert grid[0].metrics["epoch"] == EPOCHS


@pytest.mark.timeout(180)
def test_a_failing_train_run_fails_its_trial_with_the_error_after_its_reports(ray_session, tmp_path):
    grid, results = run(tmp_path, fail_at=2)
    assert [r["epoch"] for r in results] == [1]
    assert len(grid.errors) == 1
    assert "the loop failed at epoch 2" in str(grid.errors[0])
