"""Ray Tune trial schedulers by `search.scheduler`.

Metric and mode are given to Tune once (`TuneConfig`), which hands them on.
Time is counted in epochs (the `epoch` every report carries), not in Tune's
training iterations: a trial resumed from its checkpoint continues its epoch
count, so rungs stay where they were.
"""

from __future__ import annotations

from typing import Callable, Optional

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler, MedianStoppingRule, TrialScheduler

from raysweep.config.sections.run import SearchConfig
from raysweep.registry import Registry

TIME_ATTR = "epoch"
SchedulerFactory = Callable[[SearchConfig, int], TrialScheduler]  # (search section, max epochs)
TRIAL_SCHEDULERS: Registry[SchedulerFactory] = Registry("trial scheduler")


@TRIAL_SCHEDULERS.register("none")
def _none(search: SearchConfig, max_t: int) -> TrialScheduler:
    return FIFOScheduler()


@TRIAL_SCHEDULERS.register("asha")
def _asha(search: SearchConfig, max_t: int) -> TrialScheduler:
    return ASHAScheduler(time_attr=TIME_ATTR, max_t=max_t, grace_period=min(search.grace_period, max_t), reduction_factor=search.reduction_factor)


@TRIAL_SCHEDULERS.register("hyperband")
def _hyperband(search: SearchConfig, max_t: int) -> TrialScheduler:
    return HyperBandScheduler(time_attr=TIME_ATTR, max_t=max_t, reduction_factor=search.reduction_factor)


@TRIAL_SCHEDULERS.register("median")
def _median(search: SearchConfig, max_t: int) -> TrialScheduler:
    return MedianStoppingRule(time_attr=TIME_ATTR, grace_period=search.grace_period)


def default_scheduler(search: SearchConfig) -> str:
    """ASHA for Optuna searches, none for grids and random draws (every cell is wanted whole)."""
    return "asha" if search.algorithm == "optuna" and len(search.metrics) == 1 else "none"


def build_trial_scheduler(search: SearchConfig, epochs: int) -> TrialScheduler:
    name: Optional[str] = search.scheduler or default_scheduler(search)
    return TRIAL_SCHEDULERS.get(name, path="search.scheduler")(search, search.max_t or epochs)
