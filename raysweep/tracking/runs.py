"""Find-or-create the MLflow runs of a sweep, so each exists exactly once.

    parent  one per sweep            tags raysweep.sweep_id, raysweep.role=sweep
    trial   one per Tune trial       tags raysweep.sweep_id, raysweep.trial_id, mlflow.parentRunId
    fold    one per fold of a trial  tags raysweep.trial_run, raysweep.fold, mlflow.parentRunId
    train   one per `raysweep train` tags raysweep.sweep_id, raysweep.trial_id (its name), raysweep.role=train; no parent

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
OUTCOME_TAG = "raysweep.outcome"  # finished, stopped (asha, epoch 3), failed, interrupted
STOPPED_BY_TAG = "raysweep.stopped_by"  # the rule that stopped a trial early (asha, median, ...)
STOPPED_AT_TAG = "raysweep.stopped_at_epoch"
INTERRUPTED_TAG = "raysweep.interrupted"  # on runs left unfinished by Ctrl-C; resume removes it
STRAY_OUTCOME = "lost (started after a killed driver's last snapshot; not resumed)"
_PARAMS_PER_BATCH = 100  # MLflow's limit on params in one log_batch


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
    """The experiment named `name`, created if missing. A new one is marked as model training
    (`mlflow.experimentKind`, the tag the UI's experiment-type selector writes): MLflow 3's UI
    would otherwise open it on the GenAI overview, not on its runs. An existing one keeps
    whatever kind its owner chose."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    # the values are the UI's (mlflow/server/js); "custom_model_development" reads "Machine learning"
    model_training = {"mlflow.experimentKind": "custom_model_development"}
    return client.create_experiment(name, artifact_location=artifact_location, tags=model_training)


def parent_run(client: MlflowClient, experiment: str, sweep_id: str) -> tuple[str, bool]:
    return find_or_create(client, experiment, {SWEEP_TAG: sweep_id, ROLE_TAG: "sweep"}, run_name=sweep_id)


def trial_run(client: MlflowClient, experiment: str, sweep_id: str, parent: Optional[str], trial_id: str, run_name: str) -> tuple[str, bool]:
    """A sweep's trial run, under the sweep's run; with no `parent`, the run of `raysweep train`."""
    tags = {SWEEP_TAG: sweep_id, ROLE_TAG: "trial", TRIAL_TAG: trial_id, PARENT_TAG: parent}
    if parent is None:
        tags = {SWEEP_TAG: sweep_id, ROLE_TAG: "train", TRIAL_TAG: trial_id}
    return find_or_create(client, experiment, tags, run_name=run_name)


def fold_run(client: MlflowClient, experiment: str, sweep_id: str, trial_run_id: str, fold: int, run_name: str) -> tuple[str, bool]:
    tags = {SWEEP_TAG: sweep_id, ROLE_TAG: "fold", TRIAL_RUN_TAG: trial_run_id, FOLD_TAG: str(fold), PARENT_TAG: trial_run_id}
    return find_or_create(client, experiment, tags, run_name=run_name)


def open_trial(client: MlflowClient, target, trial_id: str, run_name: str, params: dict[str, str], n_folds: int) -> tuple[str, bool, dict[int, str]]:
    """(run id, created?, fold runs) of a trial about to train: its run found or created, a
    resumed one RUNNING again and no longer tagged interrupted, the params it lacks logged, and
    one run per fold under per-trial cross-validation. `target`: a `store.TrackingTarget`."""
    t = target
    run_id, created = trial_run(client, t.experiment_id, t.sweep_id, t.parent_run_id, trial_id, run_name)
    missing = params
    if not created:  # a resumed trial continues its run
        run = client.get_run(run_id)
        if run.info.status != "RUNNING":
            client.update_run(run_id, status="RUNNING")
        if INTERRUPTED_TAG in run.data.tags:
            client.delete_tag(run_id, INTERRUPTED_TAG)
        missing = {k: v for k, v in params.items() if k not in run.data.params}
    log_params(client, run_id, missing)
    folds = {k: fold_run(client, t.experiment_id, t.sweep_id, run_id, k, f"{run_name}-fold{k}")[0] for k in range(n_folds)}
    return run_id, created, folds


def log_params(client: MlflowClient, run_id: str, params: dict[str, str]) -> None:
    """`params` on the run, in as few `log_batch` calls as MLflow allows."""
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in sorted(params.items())]
    for i in range(0, len(items), _PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[i : i + _PARAMS_PER_BATCH])


def logged_steps(client: MlflowClient, run_id: str, key: str) -> set[int]:
    return {m.step for m in client.get_metric_history(run_id, key)}


def end_trial(client: MlflowClient, run_id: str, fold_runs: list[str], status: str, tags: dict[str, str]) -> None:
    """The sweep's driver ends a trial's run and its fold runs as Tune judged the trial."""
    from mlflow.entities import RunTag

    if tags:
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    for run in [run_id, *fold_runs]:
        client.set_terminated(run, status)


def fold_runs_of(client: MlflowClient, experiment_id: str, trial_run_id: str) -> dict[int, str]:
    """The fold runs of a trial run (per-trial cross-validation), by fold."""
    runs = client.search_runs([experiment_id], filter_string=f"tags.`{TRIAL_RUN_TAG}` = '{trial_run_id}' and tags.`{ROLE_TAG}` = 'fold'")
    return {int(r.data.tags[FOLD_TAG]): r.info.run_id for r in runs}


def open_runs(client: MlflowClient, experiment_id: str, sweep_id: str) -> list[str]:
    """The sweep's trial and fold runs still RUNNING."""
    query = f"tags.`{SWEEP_TAG}` = '{sweep_id}' and attributes.status = 'RUNNING'"
    return [r.info.run_id for r in client.search_runs([experiment_id], filter_string=query) if r.data.tags.get(ROLE_TAG) != "sweep"]


def is_open(client: MlflowClient, run_id: str) -> bool:
    return client.get_run(run_id).info.status == "RUNNING"


def end_strays(client: MlflowClient, experiment_id: str, sweep_id: str, known: set[str]) -> list[str]:
    """End as killed the sweep's trial runs (and their fold runs) still open whose trial Tune does
    not know: trials a killed driver started after its last snapshot that no resumed trial
    continued (`raysweep.sweep.strays`), so the UI shows none running forever; return them."""
    ended = []
    for run in open_runs(client, experiment_id, sweep_id):
        tags = client.get_run(run).data.tags
        if tags.get(ROLE_TAG) == "trial" and tags.get(TRIAL_TAG) not in known:
            end_trial(client, run, list(fold_runs_of(client, experiment_id, run).values()), "KILLED", {OUTCOME_TAG: STRAY_OUTCOME})
            ended.append(run)
    return ended
