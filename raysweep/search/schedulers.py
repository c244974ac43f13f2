"""Ray Tune trial schedulers by `search.scheduler`.

Metric and mode are given to Tune once (`TuneConfig`), which hands them on.
Time is counted in epochs (the `epoch` every report carries), not in Tune's
training iterations: a trial resumed from its checkpoint continues its epoch
count, so rungs stay where they were.

Tune restores the searcher on resume but rebuilds the scheduler as it was pickled when
the sweep started (`tuner.pkl`): every score ASHA recorded at its rungs, and every result the
median rule compares against, is lost, and a resumed sweep prunes less than one never
stopped. raysweep's ASHA and median rule replay, at their first trial, each stored trial's
per-epoch results. HyperBand's brackets depend on the order trials arrived in, which is not
stored: a resumed HyperBand starts empty.
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Optional

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler, MedianStoppingRule, TrialScheduler

from raysweep.config.sections.run import SearchConfig
from raysweep.registry import Registry

log = logging.getLogger(__name__)

TIME_ATTR = "epoch"
Histories = Callable[[], dict[str, list[dict]]]  # per trial id, the results Tune judged it on
SchedulerFactory = Callable[[SearchConfig, int, Optional[Histories]], TrialScheduler]  # (search section, max epochs, past)
TRIAL_SCHEDULERS: Registry[SchedulerFactory] = Registry("trial scheduler")


class _Replaying(TrialScheduler):
    """At the first trial added, `replay(histories())`: the stored trials' results, per trial
    id (`histories` is picklable, since Tune pickles the scheduler in `tuner.pkl`)."""

    def __init__(self, *, histories: Optional[Histories] = None, **kwargs):
        super().__init__(**kwargs)
        self._histories = histories
        self._replayed = False

    def on_trial_add(self, tune_controller, trial) -> None:
        if not self._replayed:
            self._replayed = True
            try:
                self.replay(self._histories() if self._histories else {})
            except Exception as e:  # the sweep goes on, pruning as a fresh scheduler would
                log.warning("%s could not replay the stored trials' results (%s: %s); it starts empty", type(self).__name__, type(e).__name__, e)
        super().on_trial_add(tune_controller, trial)

    def replay(self, histories: dict[str, list[dict]]) -> None:
        raise NotImplementedError


class ResumableASHA(_Replaying, ASHAScheduler):
    """ASHA whose rung scores survive a resume, replayed in its one bracket."""

    def replay(self, histories: dict[str, list[dict]]) -> None:
        """Record each trial's score at each rung it passed, as `on_trial_result` did."""
        if len(self._brackets) != 1:
            return  # several brackets: which one a trial was in is not stored
        bracket = self._brackets[0]
        for trial_id, history in histories.items():
            stub = _TrialId(trial_id)
            for result in _scored(history, self._metric):
                bracket.on_result(stub, result[TIME_ATTR], self._metric_op * result[self._metric])


class ResumableMedian(_Replaying, MedianStoppingRule):
    """The median stopping rule whose compared results survive a resume. A stored trial Tune
    runs again gets its own past back, under the trial object Tune now holds, so it is never
    compared with itself."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._stored: dict[str, _TrialId] = {}

    def replay(self, histories: dict[str, list[dict]]) -> None:
        for trial_id, history in histories.items():
            results = _scored(history, self._metric)
            if results:
                self._stored[trial_id] = stub = _TrialId(trial_id)
                self._results[stub] = results

    def on_trial_add(self, tune_controller, trial) -> None:
        super().on_trial_add(tune_controller, trial)
        stub = self._stored.pop(trial.trial_id, None)
        if stub is not None:
            self._results[trial] = self._results.pop(stub)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        # A trial restarted from a checkpoint reports its later epochs again: they replace the
        # first reports, or its running mean would count those epochs twice.
        if TIME_ATTR in result and trial in self._results:
            self._results[trial] = [r for r in self._results[trial] if r[TIME_ATTR] < result[TIME_ATTR]]
        return super().on_trial_result(tune_controller, trial, result)


def _scored(history: list[dict], metric: str) -> list[dict]:
    """The results a scheduler can judge: an epoch and a finite value of the metric."""
    return [r for r in history if TIME_ATTR in r and isinstance(r.get(metric), (int, float)) and math.isfinite(r[metric])]


class _TrialId:
    """What a bracket reads of a trial: its id."""

    def __init__(self, trial_id: str):
        self.trial_id = trial_id


@TRIAL_SCHEDULERS.register("none")
def _none(search: SearchConfig, max_t: int, histories: Optional[Histories] = None) -> TrialScheduler:
    return FIFOScheduler()


@TRIAL_SCHEDULERS.register("asha")
def _asha(search: SearchConfig, max_t: int, histories: Optional[Histories] = None) -> TrialScheduler:
    return ResumableASHA(
        time_attr=TIME_ATTR, max_t=max_t, grace_period=min(search.grace_period, max_t), reduction_factor=search.reduction_factor, histories=histories,
    )


@TRIAL_SCHEDULERS.register("hyperband")
def _hyperband(search: SearchConfig, max_t: int, histories: Optional[Histories] = None) -> TrialScheduler:
    return HyperBandScheduler(time_attr=TIME_ATTR, max_t=max_t, reduction_factor=search.reduction_factor)


@TRIAL_SCHEDULERS.register("median")
def _median(search: SearchConfig, max_t: int, histories: Optional[Histories] = None) -> TrialScheduler:
    return ResumableMedian(time_attr=TIME_ATTR, grace_period=search.grace_period, histories=histories)


def default_scheduler(search: SearchConfig) -> str:
    """ASHA for Optuna searches, none for grids and random draws (every cell is wanted whole)."""
    return "asha" if search.algorithm == "optuna" and len(search.metrics) == 1 else "none"


def scheduler_name(search: SearchConfig) -> str:
    """The trial scheduler a sweep runs: `search.scheduler`, else the default for its algorithm."""
    return search.scheduler or default_scheduler(search)


def build_trial_scheduler(search: SearchConfig, epochs: int, histories: Optional[Histories] = None) -> TrialScheduler:
    """The scheduler `search.scheduler` names; `histories` gives the stored trials' results
    to a scheduler that restores its state from them on resume (ASHA, median)."""
    return TRIAL_SCHEDULERS.get(scheduler_name(search), path="search.scheduler")(search, search.max_t or epochs, histories)
