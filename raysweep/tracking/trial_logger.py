"""Per-epoch MLflow logging of one trial, from rank 0 only.

`MlflowTrialLogger` is an epoch listener of the `Trainer`: built by the Tune
trial function (or `raysweep train`), pickled to the Train workers, and started on
rank 0 alone. It finds (or creates) the trial's run by its tags and logs the
resolved config as params. In a sweep that is all: the sweep's driver logs each
epoch as Tune judges it and ends the run (`raysweep.tracking.sweep`), so the run's
history is exactly the trial's results in Tune, whatever a pruned trial's worker
group trains after its stop. Alone (`log_epochs=True`, `raysweep train`) it logs
one batch of metrics per epoch and ends a failed run (`raysweep train` ends a finished one
after logging its artifacts); epochs in the checkpoint's history
that the run lacks (logging interrupted by a kill) are logged on resume. Under
per-trial cross-validation each fold gets a child run with its own per-epoch
metrics; the trial run carries their mean and standard deviation. While the trial
trains, the run also gets MLflow's system metrics (`raysweep.tracking.system_metrics`).
"""

from __future__ import annotations

import math
import re
import time
from typing import Any, Optional

from raysweep.tracking.store import TrackingTarget, redact_uri, trial_params

# metrics whose history tells which epochs a run already has (every epoch's batch holds them)
STEP_KEY = "train/loss"
FOLD_STEP_KEY = "val/loss"
_FOLD_KEY = re.compile(r"^fold(\d+)/(.+)$")
# How long a sweep trial's end waits for its last MLflow calls (done long before, but for an MLflow
# outage): below `raysweep.sweep.trial.REUSE_WAIT_S`, so that Tune can still hand its actor on
SWEEP_CLOSE_WAIT_S = 25.0


def numeric_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The metrics MLflow can hold: numbers, not the internal `_...` keys, not `epoch` (the step)."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if not k.startswith("_") and k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def epoch_batches(metrics: dict[str, Any], run_id: str, fold_runs: dict[int, str], timestamp_ms: int) -> dict[str, list]:
    """One epoch's metrics as one batch per run: `fold<k>/...` to fold k's run, the rest to the trial's."""
    from mlflow.entities import Metric

    step = int(metrics.get("epoch", 0))
    batches: dict[str, list] = {run: [] for run in [*fold_runs.values(), run_id]}
    for key, value in numeric_metrics(metrics).items():
        match = _FOLD_KEY.match(key)
        if match and int(match.group(1)) in fold_runs:
            batches[fold_runs[int(match.group(1))]].append(Metric(match.group(2), value, timestamp_ms, step))
        else:
            batches[run_id].append(Metric(key, value, timestamp_ms, step))
    return batches


class MlflowTrialLogger:
    def __init__(self, target: TrackingTarget, trial_id: str, run_name: str, *, log_epochs: bool = True, opener=None, ends_trained_run: bool = True):
        self.target = target
        self.trial_id = trial_id
        self.run_name = run_name
        self.log_epochs = log_epochs  # False in a sweep: its driver logs what Tune judged
        # False: a run that trained to its end is left open for the caller, who ends it once its
        # artifacts are in (`raysweep train`), so that a run that reads ended has them all
        self.ends_trained_run = ends_trained_run
        # in a sweep, the actor that opens its trials' runs (`raysweep.tracking.trial_runs`):
        # this process then imports no MLflow (unless it samples system metrics)
        self.opener = opener
        if opener is not None and log_epochs:
            raise ValueError("a trial logging its own epochs opens its run itself")
        self.run_id: Optional[str] = None
        self.fold_runs: dict[int, str] = {}
        self._logged: dict[str, set[int]] = {}  # run id -> steps it has
        self._log = None
        self._client = None
        self._system = None  # the run's system-metrics monitor, on the process that trains

    def __getstate__(self):  # a client and threads stay in the process that made them
        state = self.__dict__.copy()
        state["_log"] = state["_client"] = state["_system"] = None
        return state

    # -- the listener interface (rank 0) ------------------------------------------
    def start(self, trainer, start_epoch: int) -> None:
        from raysweep.tracking.resilient import ResilientLogger

        self._log = ResilientLogger(redact_uri(self.target.uri))
        params = trial_params(trainer.cfg)
        n_folds = trainer.num_folds if trainer.num_folds > 1 else 0  # all folds, wherever they train
        history = list(trainer.history)
        extras = trainer.report_extras
        replayed_at = _now_ms()

        def setup():
            if self.opener is not None:
                import ray

                self.run_id, self.fold_runs = ray.get(self.opener.open.remote(self.trial_id, self.run_name, params, n_folds))
            else:
                from mlflow import MlflowClient

                self._client = MlflowClient(self.target.uri)
                self._open(params, n_folds)
            extras["mlflow_run_id"] = self.run_id
            if self.log_epochs:
                for metrics in history:  # epochs the checkpoint has and the run may lack
                    self._log_epoch(metrics, replayed_at)

        # Before the first epoch: the run id goes into every report and checkpoint (the leaderboard
        # and `raysweep report` name the run from them), and a Ray Train worker is killed with its
        # trial when a scheduler stops it. In a reused trial actor MLflow's store is already open.
        self._log.call_now("open the trial's run", setup, timeout_s=30.0)
        self._start_system_metrics(trainer.cfg)

    def epoch(self, metrics: dict[str, Any]) -> None:
        if not self.log_epochs:
            return
        snapshot, at = dict(metrics), _now_ms()
        self._log.submit(f"epoch {metrics.get('epoch')}", lambda: self._log_epoch(snapshot, at))

    def finish(self, final: dict[str, Any], error: Optional[str] = None) -> None:
        def close():
            if error:
                self._client.set_tag(self.run_id, "raysweep.error", error[:5000])
            for run in [self.run_id, *self.fold_runs.values()]:
                self._client.set_terminated(run, "FAILED" if error else "FINISHED")

        self._log.submit("stop system metrics", self._stop_system_metrics)
        if self.log_epochs:  # in a sweep the driver ends the run as Tune judged the trial
            if error or self.ends_trained_run:
                self._log.submit("close the run", close)
            self._log.close()
        else:
            # Only the last system-metrics sample can be left (the driver logs and ends the run);
            # the trial's thread ends within SWEEP_CLOSE_WAIT_S, so that Tune can hand its actor
            # the next trial; what a longer MLflow outage holds up goes on in this process.
            self._log.close(wait_s=SWEEP_CLOSE_WAIT_S)

    def _start_system_metrics(self, cfg) -> None:
        """Queued behind the run's opening, which gives the run id (in a sweep it does not wait)."""
        from raysweep.tracking.system_metrics import maybe_monitor

        def start():
            self._system = maybe_monitor(cfg, self.target.uri, self.run_id)
            if self._system is not None:
                self._system.start()

        self._log.submit("start system metrics", start)

    def _stop_system_metrics(self) -> None:
        if self._system is not None:
            self._system.stop()

    # -- MLflow calls (on the logger's thread) -------------------------------------
    def _open(self, params: dict[str, str], n_folds: int) -> None:
        from raysweep.tracking.runs import logged_steps, open_trial

        c = self._client
        self.run_id, created, self.fold_runs = open_trial(c, self.target, self.trial_id, self.run_name, params, n_folds)
        steps = logged_steps if self.log_epochs and not created else (lambda *_: set())
        self._logged[self.run_id] = steps(c, self.run_id, STEP_KEY)
        for run in self.fold_runs.values():
            self._logged[run] = steps(c, run, FOLD_STEP_KEY)

    def _log_epoch(self, metrics: dict[str, Any], timestamp_ms: int) -> None:
        """One epoch's batch per run. The timestamp is fixed when the epoch is submitted, not per
        attempt: a retry after an attempt that reached the server but lost its answer (a client
        timeout, a server stopped mid-request) then sends the very same rows, which MLflow skips
        as duplicates, instead of a second point at the same step."""
        step = int(metrics.get("epoch", 0))
        batches = epoch_batches(metrics, self.run_id, self.fold_runs, timestamp_ms)
        # one batch per run, each run's step recorded as soon as it is in: a retry after a
        # failure half way logs only what is missing (the trial run last, its marker "epoch done")
        for run, batch in batches.items():
            if batch and step not in self._logged[run]:
                self._client.log_batch(run, metrics=batch)
                self._logged[run].add(step)


def _now_ms() -> int:
    return int(time.time() * 1000)


def run_name(trial_id: str, params: dict[str, Any]) -> str:
    """`<trial id> lr=0.01 loss=focal`: the searched values, short."""
    shown = []
    for key, value in params.items():
        leaf = key.rsplit(".", 1)[-1]
        text = f"{value:.3g}" if isinstance(value, float) and math.isfinite(value) else str(value)
        shown.append(f"{leaf}={text}")
    return " ".join([trial_id, *shown])[:250]
