"""Find-or-create the MLflow runs of a sweep, so each exists exactly once.

    parent  one per sweep            tags raysweep.sweep_id, raysweep.role=sweep
    trial   one per Tune trial       tags raysweep.sweep_id, raysweep.trial_id, mlflow.parentRunId
    fold    one per fold of a trial  tags raysweep.trial_run, raysweep.fold, mlflow.parentRunId

Runs are found by their tags before any is created: a resumed sweep, a
restarted worker group or a re-run trial function all continue the same run.
"""

from __future__ import annotations

from typing import Optional

from mlflow import MlflowClient

SWEEP_TAG = "raysweep.sweep_id"
ROLE_TAG = "raysweep.role"
TRIAL_TAG = "raysweep.trial_id"
TRIAL_RUN_TAG = "raysweep.trial_run"
FOLD_TAG = "raysweep.fold"
PARENT_TAG = "mlflow.parentRunId"
JUDGED_TAG = "raysweep.judged_epoch"  # the last epoch Tune saw of a trial the driver has ended


def _find(client: MlflowClient, experiment_id: str, tags: dict[str, str]) -> Optional[str]:
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    runs = client.search_runs([experiment_id], filter_string=query, max_results=2, order_by=["attributes.start_time ASC"])
    return runs[0].info.run_id if runs else None


def find_or_create(client: MlflowClient, experiment_id: str, tags: dict[str, str], run_name: str) -> tuple[str, bool]:
    """(run id, created?) of the run carrying exactly these tags."""
    found = _find(client, experiment_id, tags)
    if found:
        return found, False
    run = client.create_run(experiment_id, tags=tags, run_name=run_name)
    return run.info.run_id, True


def experiment_id(client: MlflowClient, name: str, artifact_location: Optional[str]) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location)


def parent_run(client: MlflowClient, experiment: str, sweep_id: str) -> tuple[str, bool]:
    return find_or_create(client, experiment, {SWEEP_TAG: sweep_id, ROLE_TAG: "sweep"}, run_name=sweep_id)


def trial_run(client: MlflowClient, experiment: str, sweep_id: str, parent: str, trial_id: str, run_name: str) -> tuple[str, bool]:
    tags = {SWEEP_TAG: sweep_id, ROLE_TAG: "trial", TRIAL_TAG: trial_id, PARENT_TAG: parent}
    return find_or_create(client, experiment, tags, run_name=run_name)


def fold_run(client: MlflowClient, experiment: str, sweep_id: str, trial_run_id: str, fold: int, run_name: str) -> tuple[str, bool]:
    tags = {SWEEP_TAG: sweep_id, ROLE_TAG: "fold", TRIAL_RUN_TAG: trial_run_id, FOLD_TAG: str(fold), PARENT_TAG: trial_run_id}
    return find_or_create(client, experiment, tags, run_name=run_name)


def logged_steps(client: MlflowClient, run_id: str, key: str) -> set[int]:
    return {m.step for m in client.get_metric_history(run_id, key)}


def end_trial(client: MlflowClient, run_id: str, fold_runs: list[str], status: str, judged_epoch: Optional[int]) -> None:
    """The sweep's driver ends a trial's run and its fold runs as Tune judged the trial. The judged
    epoch goes on the trial run first: a worker group that trains on after the scheduler stopped
    its trial (until Ray's fate-sharing reaches it) then logs nothing past it and leaves the
    status alone (see `judged_epoch`)."""
    if judged_epoch is not None:
        client.set_tag(run_id, JUDGED_TAG, str(judged_epoch))
    for run in [run_id, *fold_runs]:
        client.set_terminated(run, status)


def judged_epoch(client: MlflowClient, run_id: str) -> Optional[int]:
    """For a trial run the driver has ended, the last epoch Tune judged; None while it runs."""
    run = client.get_run(run_id)
    judged = run.data.tags.get(JUDGED_TAG)
    return int(judged) if run.info.status != "RUNNING" and judged is not None else None


def is_open(client: MlflowClient, run_id: str) -> bool:
    return client.get_run(run_id).info.status == "RUNNING"
