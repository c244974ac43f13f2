"""Early stopping on several objectives: multi-objective asynchronous successive halving (MOASHA).

    rungs = MoashaRungs.for_search(search, "asha", max_t)   # `search.metric: [a, b]`, `scheduler: asha`
    rungs.judge("trial_7", epoch=2, values=[0.81, 0.43])   # False: stop it here

Method: Schmucker, Donini, Zafar, Salinas, Archambeau, "Multi-objective Asynchronous Successive
Halving" (2021, arXiv:2106.12639), as Syne Tune's `MOASHA`. Rungs sit at
grace_period * reduction_factor**k epochs, below `max_t`. When a trial reaches a rung, its
objectives there are recorded, and it goes on if it is among the top max(1, n // reduction_factor)
of the n trials recorded at that rung so far; otherwise it stops. "Top" is the paper's NSGA-II
selection variant: trials ranked by Pareto front (non-dominated sorting), and within a front by
crowding distance (`raysweep.search.pareto.nsga2_order`); the paper's epsilon-net variant is not
implemented. Ties go to the trial recorded first; a trial whose objectives at a rung are not all
finite cannot be ranked and stops. With one trial recorded at a rung it goes on, as Optuna's
`SuccessiveHalvingPruner` promotes the first trial of a rung. Records are kept per Tune trial:
under fold_as_trial cross-validation each fold is judged on its own values, as single-objective
ASHA judges folds (`SweepSearcher.fold_runs`).

Why raysweep keeps the rungs itself: Optuna cannot prune a multi-objective study
(`trial.report` refuses it; optuna#3450), and Tune's schedulers take one metric (ray#8018). The
records live in the searcher (`SweepSearcher.rungs`), pickled with it, so `raysweep resume`
restores them as it restores single-objective ASHA's Optuna study; stopped trials are told to
Optuna as PRUNED.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

from raysweep.scores import is_score
from raysweep.search.pareto import minimized, nsga2_order


@dataclass
class MoashaRungs:
    modes: list[str]  # one per objective, "max" or "min"
    levels: list[int]  # the rungs' epochs, ascending
    reduction_factor: int
    # rung epoch -> Tune trial id -> its objectives there, in the order trials reached the rung
    records: dict[int, dict[str, tuple[float, ...]]] = field(default_factory=dict)

    @classmethod
    def for_search(cls, search, scheduler: str, max_t: int) -> Optional["MoashaRungs"]:
        """The rungs for a `search` section with several metrics whose trial scheduler
        (`schedulers.scheduler_name`, passed in: the schedulers import the searcher, which imports
        this module) is ASHA, else None."""
        if len(search.metrics) < 2 or scheduler != "asha":
            return None
        return cls(list(search.modes), rung_levels(search.grace_period, int(search.reduction_factor), max_t), int(search.reduction_factor))

    def judge(self, trial_id: str, epoch: int, values: Sequence[object]) -> bool:
        """Whether a trial goes on after `epoch` (True off the rungs). At a rung its values are
        recorded and it is ranked among every trial recorded there (a re-run of the same trial
        replaces its record)."""
        if epoch not in self.levels:
            return True
        if not all(is_score(v) for v in values):
            return False
        rung = self.records.setdefault(epoch, {})
        rung[trial_id] = tuple(float(v) for v in values)
        return trial_id in self.promoted(epoch)

    def carry(self, earlier: "MoashaRungs") -> None:
        """Start from an earlier segment's records (`raysweep extend`: ASHA keeps the earlier
        scores), so new trials meet the bar the earlier ones set. Their ids get an `earlier:`
        prefix: two segments' Tune trial ids may be the same."""
        if list(earlier.modes) != list(self.modes):
            return  # other objectives: nothing to compare with
        for epoch, rung in earlier.records.items():
            if epoch in self.levels:
                self.records.setdefault(epoch, {}).update({f"earlier:{t}": v for t, v in rung.items()})

    def promoted(self, epoch: int) -> list[str]:
        """The trials recorded at a rung that are in its top 1/reduction_factor now."""
        rung = self.records.get(epoch, {})
        ids = list(rung)
        order = nsga2_order(minimized([rung[t] for t in ids], self.modes))
        return [ids[i] for i in order[: max(1, len(ids) // self.reduction_factor)]]


def rung_levels(grace_period: int, reduction_factor: int, max_t: int) -> list[int]:
    """grace_period * reduction_factor**k for k = 0, 1, ... below max_t (the last epoch is a
    trial's end, not a rung)."""
    levels, level = [], grace_period
    while level < max_t:
        levels.append(level)
        level *= reduction_factor
    return levels
