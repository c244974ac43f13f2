"""A real MLflow server holding a finished 3-trial sweep, shared by the server and browser tests.

The sweep runs once per session (in this process, on the session's Ray instance): the
server checks read it through `MlflowClient`, the browser test shows it in the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import pytest

from tests.conftest import tiny_config, write_yaml
from tests.fixtures.mlflow_server import MlflowServer

LRS = [0.05, 0.1, 0.2]
EPOCHS = 3


def grid_sweep(name: str, uri: str, epochs: int = EPOCHS, lrs=LRS, **sections) -> dict:
    """A grid over the learning rate, tracked to the server at `uri`."""
    return tiny_config(
        name=name,
        tracking={"enabled": True, "uri": uri},
        search={"algorithm": "grid"},
        optimizer={"lr": {"grid": list(lrs)}},
        train={"epochs": epochs},
        **sections,
    )


@dataclass
class TrackedSweep:
    server: MlflowServer
    experiment_id: str
    sweep_id: str
    trial_ids: list[str]


@pytest.fixture(scope="session")
def tracked_sweep(ray_session, tmp_path_factory) -> Iterator[TrackedSweep]:
    """A server (stopped at the end of the session) and a finished 3-trial grid sweep in it."""
    from mlflow import MlflowClient

    from raysweep.commands import load_checked
    from raysweep.sweep.experiment import run_sweep
    from raysweep.sweep.results import read_trials

    root = tmp_path_factory.mktemp("tracked-sweep")
    with MlflowServer(root / "mlflow") as server:
        sweep = load_checked(write_yaml(root / "sweep.yaml", grid_sweep("mlflow-e2e", server.uri)))
        outcome = run_sweep(sweep, storage=str(root / "results"))
        rows, _, _ = read_trials(outcome.layout)
        experiment = MlflowClient(server.uri).get_experiment_by_name("mlflow-e2e")
        yield TrackedSweep(server, experiment.experiment_id, outcome.layout.sweep_id, [r.trial_id for r in rows])
