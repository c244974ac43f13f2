"""Start and resume a sweep: the Ray Tune experiment over Ray Train trials.

    outcome = run_sweep(sweep, storage="raysweep_results")      # raysweep run
    outcome = resume_sweep("quickstart", storage=...)           # raysweep resume
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace
from typing import Optional

from raysweep.config.load import Sweep
from raysweep.errors import SweepInterrupted
from raysweep.search.moasha import MoashaRungs
from raysweep.search.schedulers import build_pruner, build_trial_scheduler, scheduler_name
from raysweep.search.searcher import SweepSearcher
from raysweep.search.space import SearchSpec
from raysweep.sweep.callbacks import ProgressTable, WorkerGroupReaper
from raysweep.sweep.checkpoints import trial_history
from raysweep.sweep.heldout import HeldoutEvaluation
from raysweep.sweep.interrupt import InterruptWatch, interrupted
from raysweep.sweep.layout import DEFAULT_STORAGE, INTERRUPTED_FILE, STOPPING_RULE, SweepLayout, manifest_for
from raysweep.sweep.plan import Plan, cluster_view, plan
from raysweep.sweep.records import ResultLog
from raysweep.sweep.state_backup import StateBackup, repair
from raysweep.sweep.trial import make_trainable, trial_dirname

# Tune snapshots the experiment (trials, searcher, scheduler) this often, so a killed
# driver loses at most this much bookkeeping (the trials' own checkpoints lose nothing).
EXPERIMENT_SNAPSHOT_S = "5"
SYNC_PERIOD_LOCAL_S = 5
SYNC_PERIOD_REMOTE_S = 60


@dataclass
class SweepOutcome:
    layout: SweepLayout
    plan: Plan
    results: object  # ray.tune.ResultGrid


def searcher_for(sweep: Sweep, train_storage: Optional[str] = None, seed_offset: int = 0) -> tuple[SweepSearcher, SearchSpec, int]:
    """The searcher, its space, and the number of Tune trials it will hand out. With the sweep's
    `train_storage`, a resumed searcher takes the epochs its snapshot missed from the checkpoints.
    `seed_offset`: an extension's sampler draws afresh rather than repeat the first segment's draws."""
    search = sweep.config.search
    spec = SearchSpec.from_sweep(sweep, grid_as_categorical=search.algorithm == "random")
    num_configs = spec.num_configs(search.algorithm, search.num_samples)
    max_epoch = search.max_t or sweep.config.train.epochs
    searcher = SweepSearcher(
        spec, metrics=search.metrics, modes=search.modes, algorithm=search.algorithm, sampler=search.sampler,
        seed=search.seed + seed_offset, num_configs=num_configs, max_epoch=max_epoch,
        histories=functools.partial(trial_history, train_storage) if train_storage else None,
        pruner=build_pruner(search, max_epoch),  # early stopping judges in the searcher's study
        rungs=MoashaRungs.for_search(search, scheduler_name(search), max_epoch),  # or, on several metrics, in its MOASHA rungs
    )
    return searcher, spec, num_configs * len(spec.replicas)


def make_tuner(sweep: Sweep, layout: SweepLayout, the_plan: Plan, searcher: SweepSearcher, spec: SearchSpec, num_trials: int, tracking, register: Optional[str], segment: Optional[SweepLayout] = None):
    """`segment`: the Tune experiment it runs (`raysweep.sweep.segments`), the sweep's own by default."""
    from ray import tune

    segment = segment or layout
    cfg = sweep.config
    callbacks = [
        InterruptWatch(layout),  # first: its mark is there when the others end the sweep
        ResultLog(functools.partial(trial_history, layout.train_storage)),
        WorkerGroupReaper(),
        StateBackup(segment),
        ProgressTable(
            spec.names + (["data.fold"] if len(spec.replicas) > 1 else []), cfg.search.primary_metric, cfg.search.primary_mode,
            cfg.search.max_t or cfg.train.epochs, total=num_trials, rule=scheduler_name(cfg.search),
        ),
    ]
    if cfg.data.has_test_split:
        callbacks.append(HeldoutEvaluation(layout))  # before the MLflow callback, whose end logs what it records
    if tracking is not None:
        from raysweep.tracking.sweep import MlflowCallback

        callbacks.append(MlflowCallback(
            tracking, train_storage=layout.train_storage, layout=layout, metric=cfg.search.primary_metric, mode=cfg.search.primary_mode,
            max_epoch=cfg.search.max_t or cfg.train.epochs, rule=scheduler_name(cfg.search), searcher=searcher, log_models=cfg.tracking.log_models, register=register,
        ))
    return tune.Tuner(
        make_trainable(sweep, layout.train_storage, tracking, the_plan.fold_groups),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            # asks the searcher's study (its pruner) whether a trial stops; pickled in tuner.pkl
            # with the searcher, so on resume it asks the searcher's restored study
            scheduler=build_trial_scheduler(cfg.search, cfg.train.epochs, searcher),
            metric=cfg.search.primary_metric,
            mode=cfg.search.primary_mode,
            num_samples=num_trials,
            max_concurrent_trials=the_plan.concurrency,
            time_budget_s=cfg.search.time_budget_s,
            trial_dirname_creator=trial_dirname,  # Tune's own names cut values short
            # An inline trial's actor trains the next trial once its own ends: the process has
            # imported torch, timm and raysweep already, and opened the MLflow store (seconds per
            # trial otherwise, BENCHMARKS.md). A Train trial's actor only waits on its Train run.
            reuse_actors=cfg.resources.inline,
        ),
        run_config=tune.RunConfig(
            name=segment.sweep_id,
            storage_path=segment.storage,
            callbacks=callbacks,
            verbose=0,  # the ProgressTable replaces Tune's reporter
            # Tune's own files (trial results, experiment state) reach storage this often; the
            # trials' checkpoints, and the history each holds, are persisted every epoch anyway
            sync_config=tune.SyncConfig(sync_period=SYNC_PERIOD_REMOTE_S if "://" in layout.storage else SYNC_PERIOD_LOCAL_S),
            failure_config=tune.FailureConfig(max_failures=_trial_retries(cfg)),
        ),
    )


def _trial_retries(cfg) -> int:
    """How often Tune starts a failed trial again. A Train trial: never, Train has restarted its
    workers `max_failures` times already. An inline trial: `max_failures` times, from its
    newest checkpoint (`trainables.tune_session`), as Train would restart its one worker; a
    diverged trial is among them, and each retry only reports the divergence again."""
    return cfg.resources.max_failures if cfg.resources.inline else 0


def _prepare_env() -> None:
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", EXPERIMENT_SNAPSHOT_S)
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")


def planned(sweep: Sweep, address: Optional[str], autoscaling: bool) -> Plan:
    from raysweep.connect import connect

    _prepare_env()
    connect(address)
    cluster, nodes = cluster_view()
    return plan(sweep.config, cluster, nodes, sweep.config.resources.max_concurrent, autoscaling=autoscaling)


def tracking_for(sweep: Sweep, layout: SweepLayout, manifest: dict):
    if not sweep.config.tracking.enabled:
        return None
    from raysweep.tracking.sweep import open_sweep

    return open_sweep(sweep, layout, manifest)


def show_where(layout: SweepLayout, tracking) -> None:
    """Where the results, the MLflow runs and the logs are (a line each, paths as typed)."""
    from raysweep.terminal import shown_path, shown_uri

    print(f"  results  {shown_path(layout.uri)}", flush=True)
    if tracking is not None:
        from raysweep.tracking.store import redact_uri

        print(f"  MLflow   {shown_uri(redact_uri(tracking.uri))}, experiment {tracking.experiment_id}", flush=True)
    print(f"  logs     {shown_path(layout.log_dir)} (what Ray, Tune and the trials print)", flush=True)


def run_sweep(sweep: Sweep, *, storage: str = DEFAULT_STORAGE, name: Optional[str] = None, address: Optional[str] = None, autoscaling: bool = False, register: Optional[str] = None) -> SweepOutcome:
    if sweep.config.tracking.enabled:
        from raysweep.tracking.sweep import probe

        probe(sweep.config)  # an unreachable MLflow is refused before Ray starts
    the_plan = planned(sweep, address, autoscaling)
    layout = SweepLayout.new(storage, name or sweep.name)
    searcher, spec, num_trials = searcher_for(sweep, layout.train_storage)
    manifest = manifest_for(
        sweep, num_trials=num_trials, num_configs=searcher.num_configs, replicas=len(spec.replicas),
        extra={STOPPING_RULE: scheduler_name(sweep.config.search)},  # `raysweep report` names it without importing Ray
    )
    tracking = tracking_for(sweep, layout, manifest)
    if tracking is not None:
        manifest.update(mlflow_uri=tracking.uri, mlflow_experiment_id=tracking.experiment_id, mlflow_parent_run_id=tracking.parent_run_id)
    layout.save(sweep, manifest)
    tuner = make_tuner(sweep, layout, the_plan, searcher, spec, num_trials, tracking, register)
    print(f"sweep {layout.sweep_id}: {num_trials} trial(s), {the_plan.describe()}", flush=True)
    show_where(layout, tracking)
    return SweepOutcome(layout, the_plan, fit_tuner(tuner, layout, storage))


def fit_tuner(tuner, layout: SweepLayout, storage: str, **view):
    """`tuner.fit()`, with Ray's, Tune's and the trials' output going to the sweep's logs and only
    raysweep's own lines on the terminal (`raysweep.terminal`); raising `SweepInterrupted` when
    the user stopped it (Tune returns as usual). `view`: what a progress table restored on
    resume should say (`total`, `rule`, `epochs`)."""
    from raysweep.connect import connected_here
    from raysweep.terminal import quiet

    from raysweep.sweep.driver import driving
    from raysweep.tracking.trial_runs import stop_opener

    with quiet(layout.log_dir, stop_ray=connected_here(), view=view), driving(layout):
        try:
            results = tuner.fit()
        finally:
            stop_opener(layout.sweep_id)
    if interrupted():
        where = "" if storage == DEFAULT_STORAGE else f" --storage {storage}"
        raise SweepInterrupted(f"interrupted: sweep {layout.sweep_id} is saved; continue it with: raysweep resume {layout.sweep_id}{where}")
    return results


def with_recorded_store(sweep: Sweep, manifest: dict) -> Sweep:
    """`sweep` tracked in the MLflow store it started with, wherever raysweep runs from now."""
    if not manifest.get("mlflow_uri"):
        return sweep
    return replace(sweep, config=sweep.config.model_copy(update={"tracking": sweep.config.tracking.model_copy(update={"uri": manifest["mlflow_uri"]})}))


def resume_sweep(name_or_path: str, *, storage: str = DEFAULT_STORAGE, address: Optional[str] = None, retry_errored: bool = False, autoscaling: bool = False) -> SweepOutcome:
    """Continue the sweep's latest segment: the sweep's own experiment, or its last extension."""
    from raysweep.sweep.segments import num_trials, segments

    layout = SweepLayout.find(name_or_path, storage)
    manifest = layout.manifest()
    parts = segments(layout)
    segment = parts[-1]
    sweep = with_recorded_store(segment.load_sweep(), manifest)
    the_plan = planned(sweep, address, autoscaling)
    tracking = tracking_for(sweep, layout, manifest)
    print(f"resuming sweep {layout.sweep_id}" + (f" ({segment.sweep_id})" if segment != layout else ""), flush=True)
    show_where(layout, tracking)
    return resumed(sweep, layout, segment, the_plan, tracking, storage, retry_errored, total=num_trials(manifest, len(parts) - 1))


def resumed(sweep: Sweep, layout: SweepLayout, segment: SweepLayout, the_plan: Plan, tracking, storage: str, retry_errored: bool, total: int) -> SweepOutcome:
    """`Tuner.restore` of one segment's Tune experiment, run to its end."""
    from ray import tune

    layout.remove(INTERRUPTED_FILE)
    restored = repair(segment)
    if restored:
        print(f"restored Ray Tune state files cut short earlier from their last good copies: {', '.join(restored)}", flush=True)
    from raysweep.sweep.strays import strays

    found = strays(layout)
    if found:
        print(f"{len(found)} trial(s) started after the killed driver's last snapshot: the trials with their configurations continue them", flush=True)
    tuner = tune.Tuner.restore(
        segment.uri,
        trainable=make_trainable(sweep, layout.train_storage, tracking, the_plan.fold_groups, strays=found),
        resume_unfinished=True,
        # "resume" keeps the trial's id, so its Train run (named after it) continues from its
        # own last checkpoint; Tune's "restart" would make a new trial that starts over
        resume_errored=retry_errored,
        restart_errored=False,
    )
    search = sweep.config.search
    view = dict(total=total, rule=scheduler_name(search), epochs=search.max_t or sweep.config.train.epochs)
    return SweepOutcome(layout, the_plan, fit_tuner(tuner, layout, storage, **view))
