"""Tied grid axes (`search.cases`): exactly the given rows, crossed with the other grids,
under every search algorithm; Optuna sees one categorical over the rows' labels."""

from itertools import product

from optuna.distributions import CategoricalDistribution

from raysweep.commands.validate import plan_lines
from raysweep.config import load_sweep
from raysweep.search.space import SearchSpec
from raysweep.sweep.experiment import searcher_for
from tests.conftest import REPO, tiny_config
from tests.search.test_searcher import drain, finish

CASES = [
    {"train.batch_size": 8, "train.accumulate": 3},
    {"train.batch_size": 16, "train.accumulate": 1},
    {"train.batch_size": 32, "train.accumulate": 1},
]
KEYS = ("train.batch_size", "train.accumulate", "scheduler.name")

# the ECE449 report's 6 rows: (model, batch, accumulate) x schedule
ECE449_ROWS = sorted(
    (model, batch, acc, schedule)
    for (model, batch, acc), schedule in product(
        [("efficientnet_b7", 24, 3), ("seresnext101_32x4d", 64, 1), ("seresnext101_32x4d", 80, 1)], ["cosine", "multistep"]
    )
)


def make(sweep_file, **search):
    sweep = load_sweep(sweep_file(tiny_config(scheduler={"name": {"grid": ["cosine", "multistep"]}}, search={"cases": CASES, **search})))
    return sweep, *searcher_for(sweep)


def tuples(configs, keys=KEYS):
    return sorted(tuple(c[k] for k in keys) for c in configs)


def test_grid_runs_each_case_once_per_cell_of_the_other_grids(sweep_file):
    sweep, searcher, spec, n = make(sweep_file, algorithm="grid")
    got = drain(searcher)
    assert n == len(got) == 6
    assert tuples(got) == sorted((c["train.batch_size"], c["train.accumulate"], s) for c in CASES for s in ("cosine", "multistep"))
    # Tune is handed the keys the cases set, and each trial's config resolves to them
    assert all("search.cases" not in c for c in got)
    cfg = sweep.resolve(got[0])
    assert (cfg.train.batch_size, cfg.train.accumulate, cfg.scheduler.name) == tuple(got[0][k] for k in KEYS)
    assert spec.names == list(KEYS)


def test_the_file_values_stay_the_defaults(sweep_file):
    sweep, *_ = make(sweep_file, algorithm="grid")
    assert (sweep.config.train.batch_size, sweep.config.train.accumulate) == (16, 1)  # tiny_config's own


def test_optuna_sees_one_categorical_over_the_cases_labels_and_takes_each_in_turn(sweep_file):
    _, searcher, _, n = make(sweep_file, algorithm="optuna", num_samples=6, seed=3)
    got = drain(searcher)
    assert n == len(got) == 6
    assert tuples(got) == sorted((c["train.batch_size"], c["train.accumulate"], s) for c in CASES for s in ("cosine", "multistep"))
    for i in range(6):
        finish(searcher, f"t{i}", 0.1 * i)
    trials = searcher.study.get_trials()
    labels = ["batch_size=8, accumulate=3", "batch_size=16, accumulate=1", "batch_size=32, accumulate=1"]
    assert all(t.distributions["search.cases"] == CategoricalDistribution(labels) for t in trials)
    assert sorted(t.params["search.cases"] for t in trials) == sorted(labels * 2)
    best = searcher.study.best_trial  # the study names the case that won
    assert best.params["search.cases"] == labels[[c["train.batch_size"] for c in CASES].index(got[5]["train.batch_size"])]


def test_random_draws_whole_cases(sweep_file):
    _, searcher, spec, _ = make(sweep_file, algorithm="random", num_samples=8)
    assert spec.grid_paths == ()
    got = drain(searcher)
    assert len(got) == 8
    assert all({k: c[k] for k in KEYS[:2]} in CASES for c in got)


def test_a_case_may_choose_a_variant_whose_own_keys_are_searched(sweep_file):
    """Cases are drawn first, so a loss they choose decides which loss keys are sampled."""
    sweep = load_sweep(sweep_file(tiny_config(
        loss={"gamma": {"uniform": [0.5, 3.0]}}, search={"algorithm": "optuna", "num_samples": 4, "cases": [{"loss.name": "ce"}, {"loss.name": "focal"}]},
    )))
    searcher, _, _ = searcher_for(sweep)
    got = drain(searcher)
    assert [c["loss.name"] for c in got].count("focal") == 2
    assert all(("loss.gamma" in c) == (c["loss.name"] == "focal") for c in got)


def test_the_ece449_recipe_plans_exactly_the_reports_six_rows():
    sweep = load_sweep(REPO / "search_spaces" / "ece449_multilabel.yaml")
    searcher, spec, n = searcher_for(sweep)
    keys = ("model.name", "train.batch_size", "train.accumulate", "scheduler.name")
    assert n == 6 and tuples(drain(searcher), keys) == ECE449_ROWS
    # the plan `raysweep validate` prints: the trial count, then each cell's values
    lines = plan_lines(sweep).splitlines()
    assert lines[0] == "plan: 6 trial(s): 6 grid cell(s) x 1"
    printed = [dict(kv.split("=", 1) for kv in line.split(": ", 1)[1].split()) for line in lines[1:]]
    assert sorted((p["model.name"], int(p["train.batch_size"]), int(p["train.accumulate"]), p["scheduler.name"]) for p in printed) == ECE449_ROWS
    assert SearchSpec.from_sweep(sweep).names == ["model.name", "train.batch_size", "train.accumulate", "scheduler.name"]
