"""The sweep's MLflow side, on the driver.

`open_sweep` finds or creates the experiment and the sweep's parent run (a
resumed sweep finds the same one) and logs what describes the sweep: the
file, the search space and settings, version and git commit. `MlflowCallback`
is a Tune callback that logs each result Tune judged as its trial run's metrics,
closes the run with the trial's outcome (FINISHED, with a tag for a trial stopped
early; FAILED; KILLED and tagged interrupted after Ctrl-C), logs the trial's
artifacts, and at the end the sweep's leaderboard, search plots and best model.
Its MLflow calls run on a `ResilientLogger`, so a tracking server outage
never stalls the sweep.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import yaml
from ray.tune import Callback

from raysweep.errors import ConfigError
from raysweep.tracking.runs import INTERRUPTED_TAG, OUTCOME_TAG, STOPPED_AT_TAG, STOPPED_BY_TAG
from raysweep.tracking.store import TrackingTarget, artifact_root, redact, redact_text, redact_uri, tracking_uri
from raysweep.tracking.trial_logger import numeric_metrics


def _git_commit(where: Path) -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def sweep_params(sweep) -> dict[str, str]:
    search = sweep.config.search.model_dump(mode="json", exclude_none=True)
    params = {f"search.{k}": json.dumps(v) if isinstance(v, (list, dict)) else str(v) for k, v in search.items()}
    for path, dom in sweep.space.items():
        params[f"space.{path}"] = json.dumps(dom.to_yaml())[:6000]
    params["resources.workers"] = str(sweep.config.resources.workers)
    return {k: str(redact(k, v)) for k, v in params.items()}


def probe(cfg) -> None:
    """Refuse an unreachable tracking store at once (before Ray starts), in one line."""
    from mlflow import MlflowClient

    from raysweep.tracking.resilient import CLIENT_ENV

    for key, value in CLIENT_ENV.items():
        os.environ.setdefault(key, value)  # fail fast here; trials retry on their own
    uri = tracking_uri(cfg)
    if uri.startswith("sqlite:///"):
        _probe_sqlite(uri)  # opening it would create the database: a refused run must leave nothing
        return
    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as e:
        raise ConfigError(f"cannot reach MLflow at {redact_uri(uri)}: {redact_text(str(e).splitlines()[0])[:200]} (or set tracking.enabled: false)", path="tracking.uri") from None


def _probe_sqlite(uri: str) -> None:
    """A SQLite store can be used when its file, or else its directory, can be written."""
    path = Path(uri[len("sqlite:///"):].split("?", 1)[0])
    target = path if path.exists() else path.parent
    if not target.exists():
        raise ConfigError(f"cannot use the MLflow store {uri}: {target} does not exist", path="tracking.uri")
    if not os.access(target, os.W_OK):
        raise ConfigError(f"cannot use the MLflow store {uri}: {target} is not writable", path="tracking.uri")


def open_sweep(sweep, layout, manifest: dict) -> TrackingTarget:
    """The sweep's experiment and parent run; refuses an unreachable store before any trial starts."""
    from mlflow import MlflowClient
    from mlflow.entities import RunTag

    from raysweep import __version__
    from raysweep.tracking.runs import ROLE_TAG, SWEEP_TAG, experiment_id, log_params, parent_run

    cfg = sweep.config
    uri = tracking_uri(cfg)
    client = MlflowClient(uri)
    try:
        exp = experiment_id(client, cfg.tracking.experiment or sweep.name, artifact_root(cfg, uri))
        parent, created = parent_run(client, exp, layout.sweep_id)
    except Exception as e:
        raise ConfigError(f"cannot reach MLflow at {redact_uri(uri)}: {redact_text(str(e).splitlines()[0])[:200]} (or set tracking.enabled: false)", path="tracking.uri") from None
    if created:
        tags = {
            "raysweep.sweep_name": sweep.name, "raysweep.config_hash": manifest["config_hash"], "raysweep.version": __version__,
            "raysweep.storage": redact_uri(layout.uri), SWEEP_TAG: layout.sweep_id, ROLE_TAG: "sweep",
        }
        commit = _git_commit(Path(sweep.source).resolve().parent if Path(sweep.source).exists() else Path.cwd())
        if commit:
            tags["raysweep.git_commit"] = commit
        log_params(client, parent, sweep_params(sweep))
        client.log_batch(parent, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        client.log_text(parent, yaml.safe_dump(sweep.raw, sort_keys=False), "sweep.yaml")
    else:
        client.update_run(parent, status="RUNNING")
        if INTERRUPTED_TAG in client.get_run(parent).data.tags:
            client.delete_tag(parent, INTERRUPTED_TAG)
    return TrackingTarget(uri=uri, experiment_id=exp, parent_run_id=parent, sweep_id=layout.sweep_id)


class MlflowCallback(Callback):
    """Writes each trial's run as Tune judges the trial: every result Tune processed becomes the
    run's metrics for that epoch (the result that stopped a trial included, nothing after it),
    and the run ends FINISHED, stopped early (FINISHED, tagged with the rule and the epoch),
    FAILED, or, on Ctrl-C, KILLED and tagged interrupted until `raysweep resume` continues it."""

    def __init__(self, target: TrackingTarget, *, train_storage: str, layout, metric: str, mode: str, max_epoch: int, rule: Optional[str] = None, searcher=None, log_models: bool = True, register: Optional[str] = None):
        self.target = target
        self.train_storage = train_storage
        self.layout = layout
        self.metric = metric
        self.mode = mode
        self.max_epoch = max_epoch
        self.rule = rule  # the scheduler that stops trials early (asha, median, ...)
        self.searcher = searcher  # its Optuna study gives the search plots
        self.log_models = log_models
        self.register = register
        self._client = None
        self._log = None
        self._runs: dict[str, tuple[str, dict[int, str]]] = {}  # trial id -> (run, fold runs)
        self._logged: dict[str, set[int]] = {}  # run id -> steps it has

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_client"] = state["_log"] = None
        state["_runs"], state["_logged"] = {}, {}
        return state

    def _logger(self):
        if self._log is None:
            from mlflow import MlflowClient

            from raysweep.tracking.resilient import ResilientLogger

            self._client = MlflowClient(self.target.uri)
            self._log = ResilientLogger(redact_uri(self.target.uri))
        return self._log

    # -- Tune events ----------------------------------------------------------------
    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        if "epoch" not in result:
            return
        snapshot, at = dict(result), int(time.time() * 1000)
        self._logger().submit(f"trial {trial.trial_id} epoch {result['epoch']}", lambda: self._log_result(trial.trial_id, snapshot, at))

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        last = dict(trial.last_result or {})
        self._close(trial.trial_id, last, "FINISHED", self._completed_tags(last))

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        last = dict(trial.last_result or {})
        self._close(trial.trial_id, last, "FAILED", self._error_tags(trial, last))

    def _completed_tags(self, last: dict) -> dict[str, str]:
        """A trial that ended without an error: finished, or stopped early by the rule."""
        from raysweep.sweep.outcome import FINISHED, stopped

        epoch = int(last.get("epoch", 0))
        if epoch >= self.max_epoch:
            return {OUTCOME_TAG: FINISHED}
        tags = {OUTCOME_TAG: stopped(self.rule, epoch), STOPPED_AT_TAG: str(epoch)}
        if self.rule and self.rule != "none":
            tags[STOPPED_BY_TAG] = self.rule
        return tags

    def _error_tags(self, trial, last: dict) -> dict[str, str]:
        from raysweep.sweep.outcome import FAILED, error_trace, last_line

        error = str(last.get("error") or last_line(error_trace(trial)))
        return {OUTCOME_TAG: FAILED, "raysweep.error": error[:5000]}

    def on_experiment_end(self, trials: list, **info) -> None:
        from raysweep.sweep.interrupt import interrupted

        stopped_by_user = interrupted()
        log = self._logger()
        known = {t.trial_id for t in trials}
        # each trial Tune has ended, closed as its end reads: a driver killed after Tune ended a
        # trial (its snapshot says so) but before the logger closed its run left that run open
        ended = {}
        for t in trials:
            if t.status in ("TERMINATED", "ERROR"):
                last = dict(t.last_result or {})
                ended[t.trial_id] = (last, "FAILED", self._error_tags(t, last)) if t.status == "ERROR" else (last, "FINISHED", self._completed_tags(last))
        log.submit("sweep artifacts", lambda: self._finish_sweep(stopped_by_user, known, ended))
        log.close()

    # -- MLflow work (on the logger's thread) -------------------------------------------
    def _close(self, trial_id: str, last: dict, status: str, tags: dict[str, str]) -> None:
        self._logger().submit(f"close trial {trial_id}", lambda: self._close_now(trial_id, last, status, tags))

    def _trial_runs(self, trial_id: str, result: dict) -> Optional[tuple[str, dict[int, str]]]:
        """The trial's run (the worker opened it, and names it in its results) and its fold runs."""
        from raysweep.tracking.runs import SWEEP_TAG, TRIAL_TAG, _find, fold_runs_of

        if trial_id not in self._runs:
            run = result.get("mlflow_run_id") or _find(self._client, self.target.experiment_id, {TRIAL_TAG: trial_id, SWEEP_TAG: self.target.sweep_id})
            if run is None:
                return None
            self._runs[trial_id] = (run, fold_runs_of(self._client, self.target.experiment_id, run))
        return self._runs[trial_id]

    def _log_result(self, trial_id: str, result: dict, timestamp_ms: int) -> None:
        """The epoch Tune judged, once. A trial's first result in this driver first brings in the
        earlier epochs its run lacks (a killed driver's logger had not written them)."""
        from raysweep.sweep.checkpoints import trial_history
        from raysweep.sweep.records import earlier_epochs, epoch_of
        from raysweep.tracking.runs import logged_steps
        from raysweep.tracking.trial_logger import STEP_KEY

        runs = self._trial_runs(trial_id, result)
        if runs is None:
            return  # the trial's worker could not open its run (MLflow unreachable)
        run, folds = runs
        epoch = epoch_of(result)
        if run not in self._logged:
            self._logged[run] = logged_steps(self._client, run, STEP_KEY) if epoch > 1 else set()
        # epochs before this one that the run lacks: a killed driver's logger had not written them,
        # or the trial's process died after checkpointing an epoch Tune never heard of
        for earlier in earlier_epochs(lambda: trial_history(self.train_storage, trial_id), epoch, self._logged[run]):
            self._log_epoch(run, folds, earlier, timestamp_ms)
        self._log_epoch(run, folds, result, timestamp_ms)

    def _log_epoch(self, run: str, folds: dict[int, str], result: dict, timestamp_ms: int) -> None:
        from raysweep.tracking.trial_logger import epoch_batches

        step = int(result["epoch"])
        if step in self._logged[run]:
            return
        for run_id, batch in epoch_batches(trainer_metrics(result), run, folds, timestamp_ms).items():
            if batch:
                self._client.log_batch(run_id, metrics=batch)
        self._logged[run].add(step)

    def _close_now(self, trial_id: str, last: dict, status: str, tags: dict[str, str]) -> None:
        from raysweep.tracking.runs import end_trial

        runs = self._trial_runs(trial_id, last)
        if runs is None:
            return  # the trial never got as far as opening its run
        if "epoch" in last:
            # the run may have been opened after the trial's last result came (its worker opens it
            # without waiting): the epochs it lacks come from the checkpoint before it ends
            self._log_result(trial_id, last, int(time.time() * 1000))
        run, folds = runs
        # artifacts before the end: a run that reads ended has them all. A driver killed between
        # the two leaves the run open, and the next driver's `_settle` logs them again and ends it
        self._log_trial_artifacts(trial_id, run, int(last.get("epoch", 0)) or None)
        end_trial(self._client, run, list(folds.values()), status, tags)

    def _log_trial_artifacts(self, trial_id: str, run: str, judged: Optional[int]) -> None:
        """The best checkpoint up to the epoch Tune judged, its config and reports, and the
        learning curves of every judged epoch."""
        from raysweep.sweep.checkpoints import trial_history
        from raysweep.tracking import artifacts

        history = [h for h in trial_history(self.train_storage, trial_id) if judged is None or h.get("epoch", 0) <= judged]
        best = artifacts.best_checkpoint(self.train_storage, trial_id, self.metric, self.mode, max_epoch=judged)
        # no checkpoint up to the judged epoch may have survived: the curves still tell the trial
        local = artifacts.download(best[0]) if best is not None else None
        artifacts.log_trial_artifacts(self._client, run, local, self.metric, history)

    def _log_test(self, parent: str, best_run: Optional[str]) -> None:
        """The best trial's figures on the held-out test split (`raysweep.sweep.heldout`), as
        `test/<metric>` on the parent run and the best trial's run; never used for selection."""
        from mlflow.entities import Metric

        from raysweep.sweep.results import read_test_result

        test = read_test_result(self.layout)
        if not test:
            return
        if "error" in test:
            self._client.set_tag(parent, "raysweep.test_error", str(test["error"])[:5000])
            return
        now = int(time.time() * 1000)
        metrics = [Metric(f"test/{k}", v, now, 0) for k, v in numeric_metrics(test["metrics"]).items()]
        for run in [parent] + ([best_run] if best_run else []):
            self._client.log_batch(run, metrics=metrics)
            self._client.set_tag(run, "raysweep.test_split", test["split"])
        self._client.set_tag(parent, "raysweep.test_trial", test["trial_id"])
        self._client.set_tag(parent, "raysweep.test_samples", str(test["samples"]))

    def _settle(self, ended: dict[str, tuple[dict, str, dict[str, str]]]) -> None:
        """Close the runs still open whose trial Tune has ended (`on_experiment_end` says why),
        as the driver that ended the trial would have: its last epochs, status, outcome, artifacts."""
        from raysweep.tracking.runs import ROLE_TAG, TRIAL_TAG, open_runs

        for run in open_runs(self._client, self.target.experiment_id, self.target.sweep_id):
            tags = self._client.get_run(run).data.tags
            if tags.get(ROLE_TAG) == "trial" and tags.get(TRIAL_TAG) in ended:
                self._close_now(tags[TRIAL_TAG], *ended[tags[TRIAL_TAG]])

    def _finish_sweep(self, interrupted: bool, known: Optional[set[str]] = None, ended: Optional[dict] = None) -> None:
        from raysweep.sweep.results import leaderboard_csv, read_trials
        from raysweep.tracking import artifacts
        from raysweep.tracking.runs import open_runs

        if ended and not interrupted:
            # on Ctrl-C Tune ends the running trials too: those read as interrupted (below), for resume
            self._settle(ended)
        parent = self.target.parent_run_id
        rows, _, _ = read_trials(self.layout)
        self._client.log_text(parent, leaderboard_csv(rows), "leaderboard.csv")
        if any(r.pareto is not None for r in rows):  # several objectives: the Pareto front, as the report marks it
            from raysweep.sweep.results import pareto_csv

            self._client.log_text(parent, pareto_csv(rows), "pareto_front.csv")
        study = getattr(self.searcher, "study", None)
        if study is not None:
            with tempfile.TemporaryDirectory() as out:
                for path in artifacts.search_plots(study, Path(out)):
                    self._client.log_artifact(parent, str(path), "search")
        best = next((r for r in rows if r.metric is not None), None)
        if best is not None:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            self._client.log_batch(parent, metrics=[Metric(f"best/{k}", v, now, 0) for k, v in numeric_metrics({self.metric: best.metric}).items()])
            run = self._trial_runs(best.trial_id, {"mlflow_run_id": best.mlflow_run_id} if best.mlflow_run_id else {})
            if run:
                self._client.set_tag(parent, "raysweep.best_trial", best.trial_id)
                self._client.set_tag(parent, "raysweep.best_run_id", run[0])
            self._log_test(parent, run[0] if run else None)
        if interrupted:
            # the trials Ctrl-C cut short, and the sweep, read as stopped by the user; no model
            # is logged for a sweep whose trials are unfinished (resume logs it at its end)
            for run in open_runs(self._client, self.target.experiment_id, self.target.sweep_id):
                self._client.set_tag(run, INTERRUPTED_TAG, "true")
                self._client.set_terminated(run, "KILLED")
            self._client.set_tag(parent, INTERRUPTED_TAG, "true")
            self._client.set_terminated(parent, "KILLED")
            return
        if known is not None:
            from raysweep.tracking.runs import end_strays

            end_strays(self._client, self.target.experiment_id, self.target.sweep_id, known)
        if best is not None and run and self.log_models:
            ckpt = artifacts.best_checkpoint(self.train_storage, best.trial_id, self.metric, self.mode, max_epoch=best.epochs_done or None)
            if ckpt is not None:
                uri = artifacts.log_model(self._client, run[0], artifacts.download(ckpt[0]), self.register)
                if uri:
                    self._client.set_tag(parent, "raysweep.best_model_uri", str(uri))
        self._client.set_terminated(parent, "FINISHED")


def trainer_metrics(result: dict) -> dict:
    """What the trainer reported in a Tune result, without what Tune adds to every result
    (iteration counts, times, pid, ...) or raysweep's own markers."""
    from ray.tune.result import AUTO_RESULT_KEYS

    tune_keys = {*AUTO_RESULT_KEYS, "done", "trial_id", "should_checkpoint", "diverged"}
    return {k: v for k, v in result.items() if k not in tune_keys}


EXTENSIONS_TAG = "raysweep.extensions"  # on the parent run: how many times the sweep was extended


def record_extensions(target: TrackingTarget, records: list[dict]) -> None:
    """The parent run records each `raysweep extend` (`raysweep.sweep.extension`): when, how many
    trials, what changed, which earlier trials the searcher left out; as a tag per extension and
    all of them as `extensions.json`."""
    from mlflow import MlflowClient

    client = MlflowClient(target.uri)
    parent = target.parent_run_id
    client.set_tag(parent, EXTENSIONS_TAG, str(len(records)))
    client.set_tag(parent, f"raysweep.extension.{len(records)}", json.dumps(records[-1], default=str)[:5000])
    client.log_text(parent, json.dumps(records, indent=1, default=str), "extensions.json")
