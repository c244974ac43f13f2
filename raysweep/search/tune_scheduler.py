"""The Ray Tune scheduler of a sweep: it stops the trials the searcher's Optuna pruner prunes
(`raysweep.search.schedulers` says which pruner and why, and builds this). Apart from the
pruners so that checking a sweep file imports no Ray Tune.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

if TYPE_CHECKING:
    from raysweep.search.searcher import SweepSearcher

TIME_ATTR = "epoch"  # a trial's time, as its reports count it


class PrunerScheduler(FIFOScheduler):
    """Stops a trial when its searcher's study prunes it (`SweepSearcher.should_stop`), or at
    `max_t`. All its state is the searcher's: this object is the one Tune pickled in `tuner.pkl`
    together with the searcher (one pickle, so the reference survives), and `Tuner.restore` loads
    the searcher's newest state into that same object (`Searcher.restore` updates it in place)."""

    def __init__(self, searcher: "SweepSearcher", *, max_t: int):
        super().__init__()
        self.searcher = searcher
        self.max_t = max_t

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        # Tune asks its scheduler before its searcher: `should_stop` records the result first
        if self.searcher.should_stop(trial.trial_id, result) or result.get(TIME_ATTR, 0) >= self.max_t:
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE
