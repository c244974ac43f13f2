"""Where a sweep's results are, as the MLflow store recorded them: the sweep's parent run
carries its directory (`raysweep.storage`), so `raysweep report NAME` finds a sweep that
was run with another `--storage`.

Only the default store is asked ($MLFLOW_TRACKING_URI, else ./mlflow.db), and only when it
is a SQLite file that exists: looking must never create a store, and a tracking server that
does not answer must not hold up an error that is already known.
"""

from __future__ import annotations

import re
from pathlib import Path

STORAGE_TAG = "raysweep.storage"  # written by raysweep.tracking.sweep.open_sweep


def recorded_dirs(sweep_id: str) -> list[str]:
    """The directories of the sweeps with this id that the default store recorded, sorted;
    [] when there is no such store or it cannot be read."""
    from raysweep.config.schema import NAME_PATTERN, SweepConfig
    from raysweep.tracking.store import tracking_uri

    uri = tracking_uri(SweepConfig(name="lookup"))
    if not re.fullmatch(NAME_PATTERN, sweep_id) or not uri.startswith("sqlite:///"):
        return []
    if not Path(uri[len("sqlite:///"):].split("?", 1)[0]).is_file():
        return []
    try:
        return _search(uri, sweep_id)
    except Exception:  # an unreadable or older store: the caller's own error stands
        return []


def _search(uri: str, sweep_id: str) -> list[str]:
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    from raysweep.tracking.runs import ROLE_TAG, SWEEP_TAG

    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL, max_results=50_000)]
    if not experiments:
        return []
    runs = client.search_runs(experiments, filter_string=f"tags.`{SWEEP_TAG}` = '{sweep_id}' and tags.`{ROLE_TAG}` = 'sweep'", max_results=1000)
    return sorted({r.data.tags[STORAGE_TAG] for r in runs if r.data.tags.get(STORAGE_TAG)})
