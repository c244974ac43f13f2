"""The sweep's MLflow side, on the driver.

`open_sweep` finds or creates the experiment and the sweep's parent run (a
resumed sweep finds the same one) and logs what describes the sweep: the
file, the search space and settings, version and git commit. `MlflowCallback`
is a Tune callback that closes each trial's run with the trial's outcome
(FINISHED, FAILED, or KILLED when the scheduler stopped it), logs the trial's
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
    from mlflow.entities import Param, RunTag

    from raysweep import __version__
    from raysweep.tracking.runs import ROLE_TAG, SWEEP_TAG, experiment_id, parent_run

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
        params = [Param(k, v) for k, v in sweep_params(sweep).items()]
        for i in range(0, len(params), 100):
            client.log_batch(parent, params=params[i : i + 100])
        client.log_batch(parent, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        client.log_text(parent, yaml.safe_dump(sweep.raw, sort_keys=False), "sweep.yaml")
    else:
        client.update_run(parent, status="RUNNING")
    return TrackingTarget(uri=uri, experiment_id=exp, parent_run_id=parent, sweep_id=layout.sweep_id)


class MlflowCallback(Callback):
    def __init__(self, target: TrackingTarget, *, train_storage: str, layout, metric: str, mode: str, max_epoch: int, searcher=None, log_models: bool = True, register: Optional[str] = None):
        self.target = target
        self.train_storage = train_storage
        self.layout = layout
        self.metric = metric
        self.mode = mode
        self.max_epoch = max_epoch
        self.searcher = searcher  # its Optuna study gives the search plots
        self.log_models = log_models
        self.register = register
        self._client = None
        self._log = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_client"] = state["_log"] = None
        return state

    def _logger(self):
        if self._log is None:
            from mlflow import MlflowClient

            from raysweep.tracking.resilient import ResilientLogger

            self._client = MlflowClient(self.target.uri)
            self._log = ResilientLogger(redact_uri(self.target.uri))
        return self._log

    # -- Tune events ----------------------------------------------------------------
    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        last = dict(trial.last_result or {})
        done = int(last.get("epoch", 0)) >= self.max_epoch and not last.get("diverged")
        self._close(trial.trial_id, last, "FINISHED" if done else ("FAILED" if last.get("diverged") else "KILLED"))

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._close(trial.trial_id, dict(trial.last_result or {}), "FAILED")

    def on_experiment_end(self, trials: list, **info) -> None:
        log = self._logger()
        log.submit("sweep artifacts", self._finish_sweep)
        log.close()

    # -- MLflow work (on the logger's thread) -------------------------------------------
    def _close(self, trial_id: str, last: dict, status: str) -> None:
        self._logger().submit(f"close trial {trial_id}", lambda: self._close_now(trial_id, last, status))

    def _trial_run(self, trial_id: str, last: dict) -> Optional[str]:
        from raysweep.tracking.runs import TRIAL_TAG, _find

        return last.get("mlflow_run_id") or _find(self._client, self.target.experiment_id, {TRIAL_TAG: trial_id, "raysweep.sweep_id": self.target.sweep_id})

    def _close_now(self, trial_id: str, last: dict, status: str) -> None:
        from raysweep.tracking import artifacts
        from raysweep.tracking.runs import PARENT_TAG, ROLE_TAG, end_trial

        run = self._trial_run(trial_id, last)
        if run is None:
            return  # the trial never got as far as opening its run
        if last.get("error"):
            self._client.set_tag(run, "raysweep.error", str(last["error"])[:5000])
        folds = self._client.search_runs([self.target.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{run}' and tags.`{ROLE_TAG}` = 'fold'")
        # not past the last epoch Tune saw: a pruned trial's worker group may train on for a moment
        judged = last.get("epoch") if isinstance(last.get("epoch"), int) else None
        end_trial(self._client, run, [f.info.run_id for f in folds], status, judged)
        if self._client.list_artifacts(run, artifacts.CHECKPOINT_ARTIFACTS):
            return  # logged before a resume
        best = artifacts.best_checkpoint(self.train_storage, trial_id, self.metric, self.mode, max_epoch=judged)
        if best is None:
            return
        local = artifacts.download(best[0])
        self._client.log_artifacts(run, str(local), artifacts.CHECKPOINT_ARTIFACTS)
        self._client.log_text(run, yaml.safe_dump(json.loads((local / "trial_config.json").read_text()), sort_keys=False), "config.yaml")
        with tempfile.TemporaryDirectory() as out:
            for path in artifacts.trial_report_files(local, self.metric, Path(out)):
                self._client.log_artifact(run, str(path), "report")

    def _finish_sweep(self) -> None:
        from raysweep.sweep.results import leaderboard_csv, read_trials
        from raysweep.tracking import artifacts

        parent = self.target.parent_run_id
        rows, _, _ = read_trials(self.layout)
        self._client.log_text(parent, leaderboard_csv(rows), "leaderboard.csv")
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
            run = self._trial_run(best.trial_id, {"mlflow_run_id": best.mlflow_run_id} if best.mlflow_run_id else {})
            if run:
                self._client.set_tag(parent, "raysweep.best_trial", best.trial_id)
                self._client.set_tag(parent, "raysweep.best_run_id", run)
                ckpt = artifacts.best_checkpoint(self.train_storage, best.trial_id, self.metric, self.mode, max_epoch=best.epochs_done or None)
                if self.log_models and ckpt is not None:
                    artifacts.log_model(self._client, run, artifacts.download(ckpt[0]), self.register)
        self._client.set_terminated(parent, "FINISHED")
