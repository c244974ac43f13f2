"""One Tune step, as Tune takes it, for searcher and scheduler tests without Ray: the
scheduler judges a result first, then the searcher hears of it (as a completion if stopped)."""

from ray.tune.schedulers import TrialScheduler


class Trial:
    def __init__(self, trial_id):
        self.trial_id = trial_id


def tell(searcher, scheduler, trial_id: str, result: dict) -> str:
    """The scheduler's word on `result` (a trial new to the searcher is suggested first)."""
    if trial_id not in searcher.tune_trials:
        searcher.suggest(trial_id)
    said = scheduler.on_trial_result(None, Trial(trial_id), result)
    if said == TrialScheduler.STOP:
        searcher.on_trial_complete(trial_id, result)
    else:
        searcher.on_trial_result(trial_id, result)
    return said
