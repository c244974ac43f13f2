"""Read a sweep's trials from disk: running, finished or killed.

Tune's experiment snapshot (`experiment_state-*.json`) gives each trial's
status and config; each trial's `result.json` gives its per-epoch results
(the last report of each epoch, since a trial resumed after a killed driver
may report an epoch twice). Only files are read: no Ray instance is needed,
and a sweep that is running or was killed reads the same way.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from raysweep.config.domains import searched_keys
from raysweep.scores import best as best_by, is_score, rank_key
from raysweep.sweep.layout import INTERRUPTED_FILE, STOPPING_RULE, SweepLayout
from raysweep.sweep.outcome import FINISHED, describe
from raysweep.sweep.segments import relative, segments, trial_states

LEADERBOARD_FILE = "leaderboard.csv"
TEST_FILE = "test_result.json"  # the best trial on the held-out test split (`raysweep.sweep.heldout`)


@dataclass
class TrialRow:
    trial_id: str
    status: str  # Tune's own: TERMINATED for a finished trial and for one a scheduler stopped
    params: dict[str, Any]
    metric: Optional[float]
    best_epoch: Optional[int]
    epochs_done: int
    checkpoint: Optional[str]
    mlflow_run_id: Optional[str]
    outcome: str = ""  # in words: finished, stopped (asha, epoch 3), failed (`raysweep.sweep.outcome`)
    test_metric: Optional[float] = None  # the objective on the held-out test split: the best trial's only
    # several objectives (`search.metric: [a, b]`): each at the trial's last epoch (what Optuna is
    # told), and whether the trial is on the Pareto front of the finished trials (None: one objective)
    objectives: dict[str, float] = field(default_factory=dict)
    pareto: Optional[bool] = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _history(layout: SweepLayout, logdir: str) -> list[dict]:
    """The trial's results per epoch (the last report of each epoch)."""
    try:
        text = layout.read_text(f"{logdir}/result.json")
    except (FileNotFoundError, OSError):
        return []
    by_epoch: dict[int, dict] = {}
    for line in text.splitlines():
        try:
            result = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a killed driver
        if "epoch" in result:
            by_epoch[int(result["epoch"])] = result
    return [by_epoch[e] for e in sorted(by_epoch)]


def _trial_states(layout: SweepLayout) -> list[dict]:
    """Tune's latest snapshot of each of the sweep's segments (`raysweep.sweep.segments`): each
    trial's id, status, config and directory (relative to the sweep's)."""
    trials = []
    for segment in segments(layout):
        where = relative(layout, segment)
        for state in trial_states(segment):
            if where and state.get("relative_logdir"):
                state["relative_logdir"] = f"{where}/{state['relative_logdir']}"
            trials.append(state)
    return trials


def _checkpoint_history(layout: SweepLayout, trial_id: str) -> tuple[list[dict], Optional[str]]:
    """(history, MLflow run id) in the trial's latest Train checkpoint: persisted with every
    epoch's checkpoint, so current even when Tune's own files in storage lag or were lost."""
    from raysweep.sweep.checkpoints import trial_checkpoints

    kept = trial_checkpoints(layout.train_storage, trial_id)
    if not kept:
        return [], None
    _, meta = max(kept, key=lambda pm: pm[1]["epoch"])
    return list(meta.get("history", [])), meta.get("mlflow_run_id")


def _trial_history(layout: SweepLayout, state: dict) -> tuple[list[dict], list[dict], Optional[str], Optional[int]]:
    """(the trial's per-epoch results, Tune's own lines, the MLflow run id its checkpoint names,
    the last epoch Tune judged it on if Tune has ended it)."""
    tune_history = _history(layout, state["relative_logdir"]) if state.get("relative_logdir") else []
    checkpoint_history, checkpoint_run = _checkpoint_history(layout, state["trial_id"])
    history = checkpoint_history if len(checkpoint_history) >= len(tune_history) else tune_history
    cap = _judged_epochs(state)
    if cap is not None:
        history = [h for h in history if h.get("epoch", 0) <= cap]
    return history, tune_history, checkpoint_run, cap


def _row(layout: SweepLayout, state: dict, metric: str, mode: str, dims: list[str], *, epochs: Optional[int] = None, rule: Optional[str] = None, interrupted: bool = False, objectives: tuple[str, ...] = ()) -> TrialRow:
    """`epochs`: the epoch a trial finishes at; `rule`: the trial scheduler; `interrupted`: the
    sweep was stopped by Ctrl-C (for `outcome`); `objectives`: a multi-objective sweep's metrics."""
    history, tune_history, checkpoint_run, cap = _trial_history(layout, state)
    best = best_by(history, mode, key=lambda h: h.get(metric))
    last = history[-1] if history else {}
    config = state.get("config") or {}
    epochs_done = int(last.get("epoch", 0))
    return TrialRow(
        trial_id=state["trial_id"],
        status=state["status"],
        params={d: config[d] for d in dims if d in config},
        metric=float(best[metric]) if best else None,
        best_epoch=int(best["epoch"]) if best else None,
        epochs_done=epochs_done,
        checkpoint=_checkpoint_of(layout, state["trial_id"], metric, mode, cap) or (best or {}).get("checkpoint_path"),
        mlflow_run_id=_run_id(checkpoint_run, tune_history),
        outcome=describe(state["status"], last_epoch=epochs_done, epochs=epochs or epochs_done, rule=rule, interrupted=interrupted),
        objectives={m: float(last[m]) for m in objectives if is_score(last.get(m))} if len(objectives) > 1 else {},
    )


def _judged_epochs(state: dict) -> Optional[int]:
    """For a trial Tune has ended, the last epoch Tune saw. A trial the scheduler stopped has its
    Train run killed only when Ray's fate-sharing reaches the worker group, which may train (and
    checkpoint) an epoch or two more: those are not the trial's, since the stop judged it without."""
    last = state.get("last_epoch")
    return int(last) if state.get("status") == "TERMINATED" and isinstance(last, (int, float)) else None


def _checkpoint_of(layout: SweepLayout, trial_id: str, metric: str, mode: str, cap: Optional[int] = None) -> Optional[str]:
    """The best of the checkpoints Ray Train kept (its best by the objective, and the latest),
    up to epoch `cap`."""
    from raysweep.sweep.checkpoints import best_checkpoint

    best = best_checkpoint(layout.train_storage, trial_id, metric, mode, max_epoch=cap)
    return best[0] if best else None


def _run_id(from_checkpoint: Optional[str], history: list[dict]) -> Optional[str]:
    return from_checkpoint or next((h["mlflow_run_id"] for h in reversed(history) if h.get("mlflow_run_id")), None)


def read_trials(layout: SweepLayout) -> tuple[list[TrialRow], str, str]:
    """(trials best first, metric, mode) of the sweep stored at `layout`."""
    sweeps = [segment.load_sweep() for segment in segments(layout)]
    sweep = sweeps[-1]  # an extension may search more dimensions: the report shows them all
    search = sweep.config.search
    dims = list(dict.fromkeys(path for s in sweeps for path in searched_keys(s.space)))
    dims += ["data.fold"] if search.cv is not None and search.cv.mode == "fold_as_trial" else []
    metric, mode = search.primary_metric, search.primary_mode
    epochs = search.max_t or sweep.config.train.epochs
    rule = layout.manifest().get(STOPPING_RULE) or search.scheduler  # a sweep from before the manifest said
    stopped_by_user = layout.has(INTERRUPTED_FILE)
    rows = [
        _row(layout, state, metric, mode, dims, epochs=epochs, rule=rule, interrupted=stopped_by_user and state["status"] in ("RUNNING", "PENDING", "PAUSED"), objectives=tuple(search.metrics))
        for state in _trial_states(layout)
    ]
    rows.sort(key=lambda r: rank_key(r.metric, mode))
    if len(search.metrics) > 1:
        mark_pareto_front(rows, search.metrics, search.modes)
    _attach_test(layout, rows, metric)
    return rows, metric, mode


def mark_pareto_front(rows: list[TrialRow], metrics: list[str], modes: list[str]) -> None:
    """Set each row's `pareto`: whether the trial finished (trained every epoch, as Optuna's
    COMPLETE trials) and no other finished trial beats it on every objective at the last epoch.
    Trials stopped early are never on the front: they were judged not worth finishing."""
    from raysweep.search.pareto import minimized, pareto_front

    finished = [r for r in rows if r.outcome == FINISHED and len(r.objectives) == len(metrics)]
    front = {finished[i].trial_id for i in pareto_front(minimized([[r.objectives[m] for m in metrics] for r in finished], modes))}
    for r in rows:
        r.pareto = r.trial_id in front


def pareto_csv(rows: list[TrialRow]) -> str:
    """The Pareto front's trials (`mark_pareto_front`): id, each objective, parameters, MLflow
    run; the parent run's `pareto_front.csv`. A header only while no trial has finished."""
    front = [r for r in rows if r.pareto]
    metrics = list(front[0].objectives) if front else []
    params = sorted({k for r in front for k in r.params})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["trial_id", *metrics, *params, "mlflow_run_id"])
    for r in front:
        writer.writerow([r.trial_id, *(r.objectives.get(m) for m in metrics), *(r.params.get(p) for p in params), r.mlflow_run_id])
    return out.getvalue()


def test_metric_name(metric: str) -> str:
    """The objective's name on the test split: `val/accuracy` -> `accuracy`."""
    return metric.split("/", 1)[1] if metric.startswith("val/") else metric


def read_test_result(layout: SweepLayout) -> Optional[dict]:
    """The sweep's test-split record ({"trial_id", "metrics", ...} or {"error"}), if it has one."""
    if not layout.has(TEST_FILE):
        return None
    try:
        return json.loads(layout.read_text(TEST_FILE))
    except (OSError, ValueError):
        return None


def write_test_result(layout: SweepLayout, record: dict) -> None:
    layout.write_text(TEST_FILE, json.dumps(record, indent=1, default=str))


def _attach_test(layout: SweepLayout, rows: list[TrialRow], metric: str) -> None:
    test = read_test_result(layout) or {}
    for r in rows:
        if r.trial_id == test.get("trial_id"):
            r.test_metric = (test.get("metrics") or {}).get(test_metric_name(metric))


def leaderboard_csv(rows: list[TrialRow]) -> str:
    params = sorted({k for r in rows for k in r.params})
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["rank", "trial_id", "status", "outcome", "metric", "best_epoch", "epochs_done", "test_metric", *params, "checkpoint", "mlflow_run_id"])
    for i, r in enumerate(rows, 1):
        writer.writerow([i, r.trial_id, r.status, r.outcome, r.metric, r.best_epoch, r.epochs_done, r.test_metric, *(r.params.get(p) for p in params), r.checkpoint, r.mlflow_run_id])
    return out.getvalue()
