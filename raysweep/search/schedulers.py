"""Ray Tune trial schedulers by `search.scheduler`.

Metric and mode are given to Tune once (`TuneConfig`), which hands them on.
Time is counted in epochs (the `epoch` every report carries), not in Tune's
training iterations: a trial resumed from its checkpoint continues its epoch
count, so rungs stay where they were.

Tune restores the searcher on resume but rebuilds the scheduler as it was pickled when
the sweep started (`tuner.pkl`): every score ASHA recorded at its rungs is lost, and a
resumed sweep prunes less than one never stopped. raysweep's ASHA replays, at its first
trial, each stored trial's per-epoch results through its bracket.
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


class ResumableASHA(ASHAScheduler):
    """ASHA whose rung scores survive a resume: `histories` (picklable, read when the first
    trial is added) gives the results of the trials stored so far, replayed in one bracket."""

    def __init__(self, *, histories: Optional[Histories] = None, **kwargs):
        super().__init__(**kwargs)
        self._histories = histories
        self._replayed = False

    def on_trial_add(self, tune_controller, trial) -> None:
        if not self._replayed:
            self._replayed = True
            try:
                self.replay(self._histories() if self._histories else {})
            except Exception as e:  # the sweep goes on, pruning as a fresh ASHA would
                log.warning("ASHA could not replay the stored trials' results (%s: %s); its rungs start empty", type(e).__name__, e)
        super().on_trial_add(tune_controller, trial)

    def replay(self, histories: dict[str, list[dict]]) -> None:
        """Record each trial's score at each rung it passed, as `on_trial_result` did."""
        if len(self._brackets) != 1:
            return  # several brackets: which one a trial was in is not stored
        bracket = self._brackets[0]
        for trial_id, history in histories.items():
            stub = _TrialId(trial_id)
            for result in history:
                value = result.get(self._metric)
                if TIME_ATTR in result and isinstance(value, (int, float)) and math.isfinite(value):
                    bracket.on_result(stub, result[TIME_ATTR], self._metric_op * value)


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
    return MedianStoppingRule(time_attr=TIME_ATTR, grace_period=search.grace_period)


def default_scheduler(search: SearchConfig) -> str:
    """ASHA for Optuna searches, none for grids and random draws (every cell is wanted whole)."""
    return "asha" if search.algorithm == "optuna" and len(search.metrics) == 1 else "none"


def build_trial_scheduler(search: SearchConfig, epochs: int, histories: Optional[Histories] = None) -> TrialScheduler:
    """The scheduler `search.scheduler` names; `histories` gives the stored trials' results
    to a scheduler that restores its state from them on resume (ASHA)."""
    name: Optional[str] = search.scheduler or default_scheduler(search)
    return TRIAL_SCHEDULERS.get(name, path="search.scheduler")(search, search.max_t or epochs, histories)
