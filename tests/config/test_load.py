"""Loading a sweep file: overrides, searchability, and one-line errors."""

import pytest

from raysweep.commands import load_checked
from raysweep.config import load_sweep
from raysweep.errors import ConfigError
from tests.conftest import tiny_config


def load(sweep_file, data, overrides=(), checks=False):
    return (load_checked if checks else load_sweep)(sweep_file(data), overrides)


def error_line(sweep_file, data, overrides=(), checks=False) -> str:
    with pytest.raises(ConfigError) as info:
        load(sweep_file, data, overrides, checks)
    return info.value.line()


def test_good_file_gives_defaults_and_space(sweep_file):
    sweep = load(sweep_file, tiny_config(optimizer={"lr": {"loguniform": [1e-3, 1e-1], "default": 0.05}}))
    assert sweep.config.optimizer.lr == 0.05
    assert set(sweep.space) == {"optimizer.lr"}
    assert sweep.resolve({"optimizer.lr": 0.002}).optimizer.lr == 0.002


def test_set_overrides_any_leaf_and_parses_yaml(sweep_file):
    sweep = load(sweep_file, tiny_config(), ["train.epochs=7", "loss.name={grid: [ce, bce]}", "model.input_size=[16, 12]"])
    assert sweep.config.train.epochs == 7
    assert sweep.space["loss.name"].values == ("ce", "bce")
    assert sweep.config.model.input_size == [16, 12]


@pytest.mark.parametrize(
    "sections, overrides, expected",
    [
        ({"optimizer": {"lr": -0.1}}, (), "optimizer.lr: must be > 0, got -0.1"),
        ({"optimizer": {"lrr": 0.1}}, (), "optimizer.lrr: unknown key, did you mean 'lr'?"),
        ({"train": {"epochs": "many"}}, (), "train.epochs: must be an integer, got 'many'"),
        ({"train": {"epochs": 2.5}}, (), "train.epochs: must be an integer, got 2.5"),
        ({"train": {"accumulate": 0}}, (), "train.accumulate: must be >= 1, got 0"),
        ({"model": {"head": "mlp"}}, (), "model.head: must be one of linear, mish_mlp, normed_linear, got 'mlp'"),
        ({"model": {"drop_rate": 1.5}}, (), "model.drop_rate: must be < 1, got 1.5"),
        ({"data": {"folds": 1}}, (), "data.folds: must be >= 2, got 1"),
        ({"optimizer": {"lr": {"grid": []}}}, (), "optimizer.lr: grid must not be empty"),
        ({"optimizer": {"lr": {"choice": [0.1, -0.1]}}}, (), "optimizer.lr: must be > 0, got -0.1 (in choice[1])"),
        ({"resources": {"workers": {"grid": [1, 2]}}}, (), "resources.workers: cannot be searched; give one value, not grid"),
        ({"data": {"kind": {"choice": ["digits", "synthetic"]}}}, (), "data.kind: cannot be searched; give one value, not choice"),
        ({"train": {"epochs": {"uniform": [1, 5]}}}, (), "train.epochs: is an integer; use {int: [1, 5]} instead of uniform"),
        ({"tracking": {"uri": "file:///tmp/mlruns"}}, (), "tracking.uri: MLflow 3 refuses the plain file store"),
    ],
)
def test_bad_values_name_file_path_and_what_is_allowed(sweep_file, sections, overrides, expected):
    line = error_line(sweep_file, tiny_config(**sections), overrides)
    assert expected in line
    assert line.split(": ")[0].endswith("sweep.yaml")
    assert "\n" not in line


def test_errors_in_overrides_name_the_override(sweep_file):
    line = error_line(sweep_file, tiny_config(), ["optimizer.lr=-1"])
    assert line == "--set: optimizer.lr: must be > 0, got -1"
    line = error_line(sweep_file, tiny_config(), ["optimzer.lr=1"])
    assert line == "--set: optimzer.lr: unknown key 'optimzer', did you mean 'optimizer'?"
    line = error_line(sweep_file, tiny_config(), ["optimizer.nesterv=true"])
    assert line == "--set: optimizer.nesterv: unknown key, did you mean 'nesterov'?"


def test_unknown_section_suggests_the_closest(sweep_file):
    data = tiny_config()
    data["optimiser"] = data.pop("optimizer")
    assert "optimiser: unknown key, did you mean 'optimizer'?" in error_line(sweep_file, data)


def test_not_yaml_and_missing_file(tmp_path, sweep_file):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+: not valid YAML"):
        load_sweep(bad)
    with pytest.raises(ConfigError, match="nope.yaml: no such file"):
        load_sweep(tmp_path / "nope.yaml")


def test_registry_checks_suggest_names(sweep_file):
    line = error_line(sweep_file, tiny_config(loss={"name": "cee"}), checks=True)
    assert "loss.name: unknown loss 'cee', did you mean 'ce'" in line
    line = error_line(sweep_file, tiny_config(model={"name": "resnet5O"}), checks=True)
    assert "model.name: unknown model 'resnet5O', did you mean" in line and "'resnet50'" in line
    line = error_line(sweep_file, tiny_config(loss={"name": {"grid": ["ce", "nope"]}}), checks=True)
    assert "loss.name: unknown loss 'nope'" in line and "(in grid[1])" in line


def test_fold_must_be_within_folds(sweep_file):
    line = error_line(sweep_file, tiny_config(data={"folds": 3, "fold": 3}), checks=True)
    assert "data.fold: must be < data.folds (3), got 3" in line


def test_yaml_is_read_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_sweep(evil)
