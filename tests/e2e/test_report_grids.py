"""The reports' grids through `raysweep run`, at smoke size (synthetic data of the right shape)."""

import json
from itertools import product

import pytest

from tests.conftest import REPO
from tests.fixtures.cli import RaysweepProcess

pytestmark = pytest.mark.slow

SMOKE = [
    "data.kind=synthetic", "data.shape=[3,16,16]", "data.num_samples=96", "data.num_classes=3",
    "model.name=tiny_cnn", "model.pretrained=false", "model.kwargs={widths: [4, 8]}", "augment.preset=none",
    "train.epochs=1", "train.batch_size=16", "train.max_steps_per_epoch=2", "resources.cpus_per_worker=0.5", "resources.gpus_per_worker=0",
    "resources.inline=true",  # the grid is under test, not DDP: each trial trains in its Tune actor
    "tracking.enabled=false",
]


def test_the_comp4211_ldam_grid_runs_each_of_its_16_cells_exactly_once(tmp_path):
    args = ["run", str(REPO / "search_spaces" / "comp4211_ldam_grid.yaml"), "--storage", str(tmp_path / "r")]
    for s in SMOKE:
        args += ["--set", s]
    run = RaysweepProcess(args, cwd=tmp_path)
    assert run.wait(900) == 0, run.output()[-3000:]
    report = RaysweepProcess(["report", "comp4211_ldam_grid", "--storage", str(tmp_path / "r"), "--json"], cwd=tmp_path)
    assert report.wait(120) == 0
    trials = json.loads(report.output().strip().splitlines()[-1])["trials"]
    cells = sorted((t["params"]["optimizer.weight_decay"], t["params"]["loss.C"]) for t in trials)
    assert cells == sorted(product([0.001, 0.01, 0.1, 1], [-2, -0.25, 0.25, 2]))
    assert all(t["status"] == "TERMINATED" and t["epochs_done"] == 1 for t in trials)
