"""Early stopping by `search.scheduler`: Optuna's pruners on the searcher's study, asked by a
small Ray Tune scheduler.

    pruner = build_pruner(search, max_t)                  # given to the searcher's study
    scheduler = build_trial_scheduler(search, epochs, searcher)   # given to Tune

| `scheduler:` | Optuna pruner                                     | parameters                       |
|--------------|---------------------------------------------------|----------------------------------|
| `asha`       | `SuccessiveHalvingPruner` (asynchronous SHA)      | grace_period, reduction_factor   |
| `hyperband`  | `HyperbandPruner` (brackets of SHA)               | grace_period, reduction_factor   |
| `median`     | `MedianPruner`                                    | grace_period (warm-up epochs)    |
| `none`       | none: Tune's FIFO scheduler                       |                                  |

With several metrics (`search.metric: [a, b]`) only `asha` (or `none`) is offered: it is
multi-objective ASHA, judged by Pareto rank at the rungs (`raysweep.search.moasha`), since
Optuna's pruners take one objective.

Why Optuna's pruners and not Tune's schedulers: a stop decision is a function of the epochs the
trials reported, and the searcher already keeps those as its study's intermediate values (and
the rungs a trial passed as the trial's system attributes), pickled with the searcher every few
seconds and restored by `Tuner.restore`. Tune instead restores its scheduler as it was pickled
when the sweep started (`tuner.pkl`), so its ASHA forgot every rung score on resume; raysweep
used to write them back into Ray's private state (`_brackets`, `_metric_op`, `_results`), and
HyperBand (whose brackets depend on the order trials arrived in) could not be restored at all.
Optuna's HyperbandPruner puts a trial in a bracket by a hash of the study's name and the trial's
number, both stored: it resumes like the others.

Time is counted in epochs (the `epoch` every report carries): a trial resumed from its checkpoint
continues its epoch count, so rungs stay where they were. The stop is taken at the epoch the
pruner judged; `raysweep.search.searcher.SweepSearcher.stopped_at` keeps it.

The Wilcoxon pruner is not offered: it compares a trial's per-instance scores (e.g. one per fold)
with the best trial's on the same instances, in any order, while raysweep's steps are epochs of a
learning curve; per-trial CV reports the folds' mean each epoch, which the pruners above judge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

import optuna

from raysweep.config.sections.run import SearchConfig
from raysweep.registry import Registry

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler

    from raysweep.search.searcher import SweepSearcher

PrunerFactory = Callable[[SearchConfig, int], Optional[optuna.pruners.BasePruner]]  # (search section, max epochs)
TRIAL_SCHEDULERS: Registry[PrunerFactory] = Registry("trial scheduler")


def _rate(search: SearchConfig) -> int:
    # Optuna's halving takes a whole factor (checked by `search.checks.trial_scheduler_fits`)
    return int(search.reduction_factor)


@TRIAL_SCHEDULERS.register("none")
def _none(search: SearchConfig, max_t: int) -> Optional[optuna.pruners.BasePruner]:
    return None


@TRIAL_SCHEDULERS.register("asha")
def _asha(search: SearchConfig, max_t: int) -> optuna.pruners.BasePruner:
    # rungs at grace_period * reduction_factor**k epochs; at each, a trial goes on if it is in
    # the top 1/reduction_factor of the trials that reached that rung so far (Li et al., 2020)
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=min(search.grace_period, max_t), reduction_factor=_rate(search))


@TRIAL_SCHEDULERS.register("hyperband")
def _hyperband(search: SearchConfig, max_t: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.HyperbandPruner(min_resource=min(search.grace_period, max_t), max_resource=max_t, reduction_factor=_rate(search))


@TRIAL_SCHEDULERS.register("median")
def _median(search: SearchConfig, max_t: int) -> optuna.pruners.BasePruner:
    # as Tune's MedianStoppingRule: judged from `grace_period` epochs on, once 3 trials finished
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=search.grace_period)


def default_scheduler(search: SearchConfig) -> str:
    """ASHA for Optuna searches, none for grids and random draws (every cell is wanted whole)."""
    return "asha" if search.algorithm == "optuna" and len(search.metrics) == 1 else "none"


def scheduler_name(search: SearchConfig) -> str:
    """The trial scheduler a sweep runs: `search.scheduler`, else the default for its algorithm."""
    return search.scheduler or default_scheduler(search)


def build_pruner(search: SearchConfig, max_t: int) -> Optional[optuna.pruners.BasePruner]:
    """The Optuna pruner `search.scheduler` names (None for `none`), for the searcher's study.
    None with several metrics: Optuna prunes one objective only (optuna#3450); ASHA on several
    is raysweep's MOASHA (`raysweep.search.moasha`)."""
    if len(search.metrics) > 1:
        return None
    return TRIAL_SCHEDULERS.get(scheduler_name(search), path="search.scheduler")(search, max_t)


def build_trial_scheduler(search: SearchConfig, epochs: int, searcher: "SweepSearcher") -> "TrialScheduler":
    """The Tune scheduler that stops the trials `searcher`'s pruner prunes (FIFO for `none`)."""
    from ray.tune.schedulers import FIFOScheduler

    from raysweep.search.tune_scheduler import PrunerScheduler

    if scheduler_name(search) == "none":
        return FIFOScheduler()
    return PrunerScheduler(searcher, max_t=search.max_t or epochs)


def __getattr__(name: str):
    # a sweep started before the Tune-facing scheduler moved to `tune_scheduler` has it pickled
    # under this module's name in its `tuner.pkl`; loading the class lazily keeps this module
    # free of Ray Tune (and so of the Ray Train modules Tune imports) for `raysweep validate`
    if name == "PrunerScheduler":
        from raysweep.search.tune_scheduler import PrunerScheduler

        return PrunerScheduler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
