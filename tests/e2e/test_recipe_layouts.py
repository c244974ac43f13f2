"""Each recipe through `raysweep run` at smoke size, on data in its users' own layout
(tests/fixtures/recipe_layouts.py): mixed image sizes, ids without extensions, Kaggle's
HPA manifests, pandas' index column, pixels and labels in two headerless files."""

import json

import pytest

from tests.fixtures.cli import RaysweepProcess
from tests.fixtures.recipe_layouts import LAYOUTS, PINNED, SMOKE, sets

pytestmark = pytest.mark.slow

TRIALS = {"protein_atlas": 5}  # fold_as_trial: one trial per fold of the recipe's 5


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_the_recipe_runs_on_its_users_layout(layout, tmp_path):
    recipe, overrides = LAYOUTS[layout](tmp_path)
    storage = tmp_path / "results"
    run = RaysweepProcess(["run", str(recipe), "--storage", str(storage), *sets(overrides + SMOKE + PINNED[recipe.stem])], cwd=tmp_path)
    assert run.wait(600) == 0, run.output()[-3000:]
    report = RaysweepProcess(["report", recipe.stem, "--storage", str(storage), "--json"], cwd=tmp_path)
    assert report.wait(120) == 0, report.output()[-2000:]
    trials = json.loads(report.output().strip().splitlines()[-1])["trials"]
    assert len(trials) == TRIALS.get(recipe.stem, 1)
    assert all(t["status"] == "TERMINATED" and t["epochs_done"] == 1 for t in trials), trials
