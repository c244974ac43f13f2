"""`raysweep report NAME` and `resume NAME` find a sweep by its id: under `--storage`, or,
without one, wherever the default MLflow store recorded it; otherwise the one-line error
names the storage it looked in and says to pass `--storage`. No Ray: the sweeps here are
directories with a manifest, and their MLflow parent runs are made by `open_sweep`.
"""

from __future__ import annotations

import pytest

from raysweep.cli import main
from raysweep.commands import find_sweep
from raysweep.config import load_sweep
from raysweep.errors import ConfigError
from raysweep.sweep.layout import DEFAULT_STORAGE, SweepLayout
from raysweep.tracking.sweep import open_sweep
from tests.conftest import tiny_config, write_yaml


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A fresh working directory whose default MLflow store is ./mlflow.db."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path.resolve()


def tracked_sweep(here, storage: str, experiment: str = "tiny") -> SweepLayout:
    """A sweep `quick` saved under `storage` whose parent run is in ./mlflow.db, as `run` leaves it."""
    config = tiny_config(name="quick", tracking={"enabled": True, "experiment": experiment})
    sweep = load_sweep(write_yaml(here / "sweep.yaml", config))
    layout = SweepLayout(str(here / storage), "quick")
    layout.save(sweep, {"config_hash": sweep.config_hash()})
    open_sweep(sweep, layout, {"config_hash": sweep.config_hash()})
    return layout


def test_a_sweep_run_with_another_storage_is_found_through_the_mlflow_store(here, capsys):
    layout = tracked_sweep(here, "runs/cifar")
    assert find_sweep("quick", DEFAULT_STORAGE) == layout
    assert main(["report", "quick"]) == 0
    assert capsys.readouterr().out.startswith("sweep quick (runs/cifar/quick): 0 trial(s)")  # relative to the working directory


def test_two_recorded_sweeps_of_one_id_are_named_not_guessed(here):
    tracked_sweep(here, "runs/a")
    tracked_sweep(here, "runs/b", experiment="other")  # in one experiment, one id is one parent run
    with pytest.raises(ConfigError) as info:
        find_sweep("quick", DEFAULT_STORAGE)
    assert info.value.line() == (
        f"quick: no sweep 'quick' under {here}/raysweep_results; MLflow recorded sweeps of that id in "
        f"{here}/runs/a/quick, {here}/runs/b/quick: pass one of these directories"
    )


def test_an_explicit_storage_is_the_only_place_looked_in(here):
    tracked_sweep(here, "runs/cifar")
    with pytest.raises(ConfigError, match="no sweep 'quick' under .*/elsewhere"):
        find_sweep("quick", "elsewhere")


@pytest.mark.parametrize("command", ["report", "resume"])
@pytest.mark.parametrize("storage", [None, "runs"])
def test_a_sweep_not_found_names_the_storage_and_says_to_pass_it(here, capsys, command, storage):
    """Refused in one line before Ray starts, and looking creates nothing (no ./mlflow.db)."""
    args = [command, "quick", *(["--storage", storage] if storage else [])]
    assert main(args) == 2
    out, err = capsys.readouterr()
    looked_in = here / (storage or DEFAULT_STORAGE)
    assert (out, err) == ("", f"error: quick: no sweep 'quick' under {looked_in} (--storage); pass the --storage DIR it was run with, or the sweep's directory\n")
    assert list(here.iterdir()) == []


def test_a_sweep_directory_not_found_is_named(here, capsys):
    assert main(["report", "runs/quick"]) == 2
    assert capsys.readouterr().err == f"error: runs/quick: no sweep 'runs/quick' under {here}/raysweep_results, nor a sweep directory at {here}/runs/quick\n"
