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


ECE449_SMOKE = [
    "data.kind=synthetic", "data.shape=[3,16,16]", "data.num_samples=120", "data.num_classes=5", "data.classes=null", "data.loader_workers=0",
    "model.pretrained=false", "augment.preset=none", "train.amp=off",
    "train.epochs=1", "train.max_steps_per_epoch=1", "train.max_val_batches=1",
    "resources.cpus_per_worker=0.5", "resources.gpus_per_worker=0", "resources.inline=true", "tracking.enabled=false",
]


def test_the_ece449_recipe_runs_exactly_the_reports_six_rows(tmp_path):
    """Its own models and batches (search.cases), on 16 px synthetic data: what `raysweep validate`
    plans is what Ray Tune ran, once each."""
    from ray.tune import ExperimentAnalysis

    from tests.search.test_cases import ECE449_ROWS

    recipe = str(REPO / "search_spaces" / "ece449_multilabel.yaml")
    overrides = [a for s in ECE449_SMOKE for a in ("--set", s)]
    check = RaysweepProcess(["validate", recipe, *overrides], cwd=tmp_path)
    assert check.wait(300) == 0, check.output()[-3000:]
    cells = [line.split(": ", 1)[1] for line in check.output().splitlines() if line.strip().startswith("cell ")]
    planned = sorted(tuple(kv.split("=", 1)[1] for kv in cell.split()) for cell in cells)
    assert planned == sorted(tuple(map(str, row)) for row in ECE449_ROWS)

    run = RaysweepProcess(["run", recipe, *overrides, "--storage", str(tmp_path / "r"), "--name", "ece449"], cwd=tmp_path)
    assert run.wait(1200) == 0, run.output()[-3000:]
    analysis = ExperimentAnalysis(str(tmp_path / "r" / "ece449"))
    keys = ("model.name", "train.batch_size", "train.accumulate", "scheduler.name")
    assert sorted(tuple(t.config[k] for k in keys) for t in analysis.trials) == ECE449_ROWS
    assert all(t.status == "TERMINATED" and t.last_result.get("epoch") == 1 for t in analysis.trials)
