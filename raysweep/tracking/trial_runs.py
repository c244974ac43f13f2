"""The sweep's trial runs, opened by one process that keeps MLflow's store open.

A trial needs its MLflow run before its first epoch (the run id goes into every report and
checkpoint; `raysweep report` and the leaderboard name the run from them), but nothing else
of MLflow: in a sweep the driver logs the epochs Tune judged and ends the run
(`raysweep.tracking.sweep`). Opening the run in the trial's own process cost each trial actor
an `import mlflow` and the opening of its store (1.0 s + 0.6 s on the benchmark machine,
BENCHMARKS.md §2), paid again by every Ray Train worker group. `RunOpener` is one actor per
sweep, started by the driver on the driver's node (where a default SQLite store lives), whose
`open` runs the same find-or-create by tags (`runs.open_trial`) as a trial would: a resumed,
retried or adopted trial still finds its run, each run exists once. The trial calls it from
its `ResilientLogger`, which retries a failed call as it would a failed MLflow call.

The actor is owned by the driver and named after the sweep: the driver ends it when the
sweep's trials have ended, and a resumed sweep's driver starts its own (a handle is never
pickled into Tune's experiment state).
"""

from __future__ import annotations

import os

from raysweep.tracking.store import TrackingTarget


class RunOpener:
    """Opens trials' runs in a `TrackingTarget`; calls run one at a time (one SQLite writer)."""

    def __init__(self, target: TrackingTarget):
        from raysweep.tracking.resilient import CLIENT_ENV

        for key, value in CLIENT_ENV.items():
            os.environ.setdefault(key, value)  # each attempt fails fast; the trial's logger retries
        from mlflow import MlflowClient

        self.target = target
        self._client = MlflowClient(target.uri)
        try:  # open the store now, while the first trials start, not in their first call
            self._client.get_experiment(target.experiment_id)
        except Exception:
            pass  # unreachable for now: each `open` tries again, and the trial retries it

    def open(self, trial_id: str, run_name: str, params: dict[str, str], n_folds: int) -> tuple[str, dict[int, str]]:
        """(run id, fold runs) of the trial, found or created (`runs.open_trial`)."""
        from raysweep.tracking.runs import open_trial

        run_id, _, folds = open_trial(self._client, self.target, trial_id, run_name, params, n_folds)
        return run_id, folds

    def hand_over(self, run_id: str, trial_id: str, run_name: str) -> None:
        """A stray trial's run is now `trial_id`'s (`raysweep.sweep.strays`): found by its trial
        tag from now on, and named after it."""
        from mlflow.entities import RunTag

        from raysweep.tracking.runs import TRIAL_TAG

        tags = [RunTag(TRIAL_TAG, trial_id)] + ([RunTag("mlflow.runName", run_name)] if run_name else [])
        self._client.log_batch(run_id, tags=tags)


def _name(sweep_id: str) -> str:
    return f"raysweep-run-opener-{sweep_id}"


def start_opener(target: TrackingTarget):
    """The sweep's `RunOpener` actor, on this (the driver's) node, taking no CPU from trials."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    # a restarted actor (its process died) serves the calls that the trials' loggers retry
    actor = ray.remote(num_cpus=0, max_restarts=-1, scheduling_strategy=here)(RunOpener)
    return actor.options(name=_name(target.sweep_id), get_if_exists=True).remote(target)


def stop_opener(sweep_id: str) -> None:
    """End the sweep's opener once its trials have ended. Tune's registry keeps the trainable,
    and with it the actor's handle, for as long as the driver's process lives (tests and
    benchmarks drive several sweeps from one process). `ray.kill` frees the name at once, so a
    sweep driven next from this process under the same id (`raysweep extend` resumes, then
    extends) starts an opener of its own."""
    import ray

    try:
        ray.kill(ray.get_actor(_name(sweep_id)))
    except ValueError:  # no opener: tracking is off, or the sweep never got as far
        pass
