"""`SweepSearcher`: a Ray Tune `Searcher` built on an Optuna study.

One searcher serves every `search.algorithm`:

- `optuna`: the chosen Optuna sampler (TPE by default), define-by-run so that
  conditional dimensions are sampled only where they apply. `grid` domains stay
  grids: their cells are enqueued round-robin and the sampler draws the other
  dimensions, so "a grid over loss.name x TPE over C, gamma and lr" runs every
  loss equally often while TPE learns across all of them. (Ray's OptunaSearch
  refuses grid_search; this is why raysweep has its own searcher.)
- `grid`: every cell of the `grid` domains once (x `num_samples` repetitions),
  other domains drawn at random per cell, as Ray's grid_search does.
- `random`: random draws; `grid` domains are categorical.

`search.cases` (tied grid axes) is one more grid axis, or categorical under
`random`; Optuna sees it as a categorical over the rows' labels, Tune the keys
each row sets.

Every judged epoch of a trial is reported to its Optuna trial, and the study's pruner
(`search.scheduler`: ASHA, HyperBand, median; see `raysweep.search.schedulers`) says whether
the trial stops (`should_stop`, which Tune's scheduler asks): early stopping keeps its state in
this study, so it resumes with it. Pruned trials are told to Optuna as PRUNED with their
per-epoch values, failed ones as FAIL, finished ones as COMPLETE with their best epoch's value.
With several objectives and `scheduler: asha`, the trials are judged at ASHA's rungs by Pareto
rank instead (`raysweep.search.moasha`, whose records this searcher keeps), and stopped ones
are told to Optuna as PRUNED. Under fold_as_trial cross-validation one Optuna trial becomes one Tune trial
per fold, and Optuna is told the folds' mean; each fold's epochs are judged in `fold_runs`,
a study of one Optuna trial per Tune trial with the same pruner. The whole state pickles, so a
resumed sweep continues the same study and ends with the asked number of trials.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import optuna
from optuna.trial import TrialState
from ray.tune.search import Searcher

from raysweep.config.cases import labels
from raysweep.config.domains import CASES, Domain
from raysweep.scores import best, is_score
from raysweep.search.moasha import MoashaRungs
from raysweep.search.samplers import build_sampler
from raysweep.search.space import SearchSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)
log = logging.getLogger(__name__)

_PRIMITIVE = (str, int, float, bool, type(None))
# on a trial carried over from an earlier segment (`seed_from`): its values by dotted path, and
# the Tune trials that ran it
PARAMS_ATTR = "raysweep.params"
TUNE_IDS_ATTR = "raysweep.tune_trial_ids"


def _categorical(dom: Domain) -> bool:
    return all(isinstance(v, _PRIMITIVE) for v in dom.values)


@dataclass
class _Config:
    """One Optuna trial and the Tune trials (one per replica) that evaluate it."""

    number: int
    params: dict[str, Any]
    outcomes: dict[int, tuple[TrialState, Optional[list[float]]]] = field(default_factory=dict)


class SweepSearcher(Searcher):
    def __init__(
        self,
        spec: SearchSpec,
        *,
        metrics: list[str],
        modes: list[str],
        algorithm: str,
        sampler: str,
        seed: int,
        num_configs: int,
        max_epoch: int,
        histories: Optional[Callable[[str], list[dict]]] = None,
        pruner: Optional[optuna.pruners.BasePruner] = None,
        rungs: Optional[MoashaRungs] = None,
    ):
        super().__init__()  # metric and mode live here; Tune's TuneConfig holds its own copy
        self.spec = spec
        self.metrics = metrics
        self.modes = modes
        self.algorithm = algorithm
        self.num_configs = num_configs
        self.max_epoch = max_epoch
        multi = len(metrics) > 1
        chosen = "random" if algorithm in ("grid", "random") else sampler
        directions = ["maximize" if m == "max" else "minimize" for m in modes]
        pruner = pruner or optuna.pruners.NopPruner()
        # named by the seed: HyperbandPruner puts a trial in a bracket by a hash of the study's
        # name and the trial's number, so the same seed gives the same brackets (a random name would not)
        self.study = optuna.create_study(study_name=f"raysweep-seed-{seed}", sampler=build_sampler(chosen, seed, multi), pruner=pruner, directions=directions)
        self.cells = spec.grid_cells()
        self.asked = 0
        self.configs: dict[int, _Config] = {}
        self.tune_trials: dict[str, tuple[int, int]] = {}  # tune trial id -> (optuna number, replica)
        self.queue: list[tuple[int, int]] = []  # (optuna number, replica) still to hand to Tune
        self.history: dict[str, dict[int, float]] = {}  # tune trial id -> objective by epoch
        self._histories = histories  # trial id -> its checkpointed results (picklable)
        # early stopping (`should_stop`): the epoch the study's pruner (or MOASHA) stopped each
        # stopped Tune trial at; under fold_as_trial, one Optuna trial per Tune trial (fold) to judge it by
        self.stopped_at: dict[str, int] = {}
        # several objectives under ASHA: the rung records MOASHA judges by (Optuna prunes one objective only)
        self.rungs = rungs
        if multi:
            with warnings.catch_warnings():  # public, marked experimental since Optuna 3.2
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.set_metric_names(list(metrics))  # the Pareto plot's axes
        self.fold_runs = optuna.create_study(study_name=f"raysweep-seed-{seed}-folds", pruner=copy.deepcopy(pruner), directions=directions[:1]) if len(spec.replicas) > 1 else None
        self.fold_trials: dict[str, int] = {}  # tune trial id -> its trial number in fold_runs
        self.carried: dict[str, int] = {}  # an earlier segment's tune trial id -> its number here (`seed_from`)
        self._trials: dict[int, optuna.trial.Trial] = {}  # live Trial handles; not pickled

    # -- what Tune asks --------------------------------------------------------
    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # metric and mode come from the sweep file, not from Tune

    def suggest(self, trial_id: str) -> Optional[dict]:
        if not self.queue:
            if self.asked >= self.num_configs:
                return Searcher.FINISHED
            self._ask()
        number, replica = self.queue.pop(0)
        self.tune_trials[trial_id] = (number, replica)
        return {**self.spec.flat(self.configs[number].params), **self.spec.replicas[replica]}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self.tune_trials:
            return
        self._reopened(trial_id)
        self._record(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: Optional[dict] = None, error: bool = False) -> None:
        if trial_id not in self.tune_trials:
            return
        number, replica = self._reopened(trial_id)
        if result and not error:
            # Tune hands the result a scheduler stopped the trial at (ASHA's rung, or max_t)
            # to this method only, never to on_trial_result: it is part of the history
            self._record(trial_id, result)
        config = self.configs[number]
        config.outcomes[replica] = self._outcome(trial_id, result, error)
        if config.outcomes[replica][0] == TrialState.FAIL:
            self.stopped_at.pop(trial_id, None)  # judged again from scratch if it is retried
        self._tell_fold_run(trial_id, config.outcomes[replica])
        if len(config.outcomes) == len(self.spec.replicas):
            self._tell(config)

    # -- early stopping: what `raysweep.search.tune_scheduler.PrunerScheduler` asks --------------
    def should_stop(self, trial_id: str, result: dict) -> bool:
        """Whether the study's pruner stopped this Tune trial, at this result or before. Tune
        asks its scheduler before its searcher (and, for a result it stops at, never calls
        `on_trial_result`), so the result is recorded here first; recording is once per epoch.
        On resume, a trial's first result first brings in the epochs the snapshot lacked, each
        judged in turn (`_record`), so a rung it passed before the kill is judged as it was."""
        if trial_id not in self.tune_trials:
            return False
        self._reopened(trial_id)
        self._record(trial_id, result)
        return trial_id in self.stopped_at

    def _judge(self, trial_id: str, trial: optuna.trial.Trial, value: float, epoch: int) -> None:
        """Report one epoch to the Optuna trial that judges the Tune trial; keep the epoch the
        pruner first stopped it at (later epochs, trained before the stop landed, are kept as
        values but judged no more)."""
        trial.report(value, step=epoch)
        # the last epoch is the trial's end, not a rung to be stopped at
        if trial_id not in self.stopped_at and epoch < self.max_epoch and trial.should_prune():
            self.stopped_at[trial_id] = epoch

    def _fold_run(self, trial_id: str) -> optuna.trial.Trial:
        """The trial of `fold_runs` that judges one fold's Tune trial (made at its first epoch)."""
        if trial_id not in self.fold_trials:
            self.fold_trials[trial_id] = self.fold_runs.ask().number
        frozen = self.fold_runs.get_trials(deepcopy=False)[self.fold_trials[trial_id]]
        return optuna.trial.Trial(self.fold_runs, frozen._trial_id)

    def _tell_fold_run(self, trial_id: str, outcome: tuple[TrialState, Optional[list[float]]]) -> None:
        """End a fold's judging trial as its Tune trial ended (the median rule compares with
        COMPLETE trials only). A fold retried (`--retry-errored`) is judged by a new trial."""
        number = self.fold_trials.pop(trial_id, None) if self.fold_runs is not None else None
        if number is None:
            return
        state, values = outcome
        self.fold_runs.tell(number, values=values[:1] if state == TrialState.COMPLETE else None, state=state)

    # -- internals -------------------------------------------------------------
    def _record(self, trial_id: str, result: dict) -> None:
        """One judged epoch of a trial, once, as an Optuna intermediate value. A result after a
        gap first brings in the epochs before it that this searcher lacks (see
        `raysweep.sweep.records`): a killed driver's snapshot, or a trial whose process died after
        checkpointing an epoch Tune never heard of, and which continues after it."""
        from raysweep.sweep.records import earlier_epochs, epoch_of

        if "epoch" not in result:
            return
        epoch = epoch_of(result)
        if self._histories is not None:
            have = self.history.get(trial_id, {})
            for earlier in earlier_epochs(lambda: self._histories(trial_id), epoch, have):
                self._record_one(trial_id, earlier)
        self._record_one(trial_id, result)

    def _record_one(self, trial_id: str, result: dict) -> None:
        value, epoch = result.get(self.metrics[0]), int(result["epoch"])
        history = self.history.setdefault(trial_id, {})
        if not is_score(value) or epoch in history:
            return
        history[epoch] = float(value)
        if len(self.metrics) == 1 and len(self.spec.replicas) == 1:
            number, _ = self.tune_trials[trial_id]
            self._judge(trial_id, self._trial(number), float(value), epoch)
        elif self.fold_runs is not None and len(self.metrics) == 1:
            self._judge(trial_id, self._fold_run(trial_id), float(value), epoch)
        elif getattr(self, "rungs", None) is not None and trial_id not in self.stopped_at and epoch < self.max_epoch:
            # getattr: a searcher pickled before MOASHA existed has no `rungs`
            if not self.rungs.judge(trial_id, epoch, [result.get(m) for m in self.metrics]):
                self.stopped_at[trial_id] = epoch

    def _reopened(self, trial_id: str) -> tuple[int, int]:
        """The Optuna trial a Tune trial reports to. A failed trial run again (`raysweep resume
        --retry-errored`) was already told to Optuna, which never reopens a trial: it gets a new
        Optuna trial with the same parameters."""
        number, replica = self.tune_trials[trial_id]
        if self.study.get_trials(deepcopy=False)[number].state == TrialState.RUNNING:
            return number, replica
        config = self.configs[number]
        self.study.enqueue_trial({p: self._encode(p, v) for p, v in config.params.items()}, skip_if_exists=False)
        trial = self.study.ask()
        for path, dom in self.spec.dims:
            if path in config.params:
                self._suggest(trial, path, dom)
        self._trials[trial.number] = trial
        self.configs[trial.number] = _Config(trial.number, dict(config.params), {k: v for k, v in config.outcomes.items() if k != replica})
        for tid, (n, r) in list(self.tune_trials.items()):
            if n == number:
                self.tune_trials[tid] = (trial.number, r)
        self.history.pop(trial_id, None)
        return trial.number, replica

    def _ask(self) -> None:
        if self.cells:
            cell = self.cells[self.asked % len(self.cells)]
            self.study.enqueue_trial({p: self._encode(p, v) for p, v in cell.items()}, skip_if_exists=False)
        trial = self.study.ask()
        params: dict[str, Any] = {}
        for path, dom in self.spec.dims:
            if self.spec.applies(path, params):
                params[path] = self._suggest(trial, path, dom)
        self._trials[trial.number] = trial
        self.configs[trial.number] = _Config(trial.number, params)
        self.queue.extend((trial.number, r) for r in range(len(self.spec.replicas)))
        self.asked += 1

    def _encode(self, path: str, value: Any) -> Any:
        dom = self.spec.domain(path)
        if dom.kind == CASES:
            return labels(dom)[dom.values.index(value)]
        return value if _categorical(dom) else dom.values.index(value)

    def _suggest(self, trial: optuna.trial.Trial, path: str, dom: Domain) -> Any:
        if dom.kind == CASES:
            # a categorical over the rows' labels, so the study (and its plots) names each case
            names = labels(dom)
            return dom.values[names.index(trial.suggest_categorical(path, names))]
        if dom.kind in ("choice", "grid"):
            if _categorical(dom):
                return trial.suggest_categorical(path, list(dom.values))
            # Optuna's categoricals hold primitives only: lists (milestones) go by index
            return dom.values[trial.suggest_categorical(path, list(range(len(dom.values))))]
        if dom.kind == "int":
            return trial.suggest_int(path, int(dom.low), int(dom.high))
        return trial.suggest_float(path, float(dom.low), float(dom.high), log=dom.kind == "loguniform")

    def _trial(self, number: int) -> optuna.trial.Trial:
        if number not in self._trials:
            frozen = self.study.get_trials(deepcopy=False)[number]
            self._trials[number] = optuna.trial.Trial(self.study, frozen._trial_id)
        return self._trials[number]

    def _outcome(self, trial_id: str, result: Optional[dict], error: bool) -> tuple[TrialState, Optional[list[float]]]:
        if error or not result or result.get("diverged"):
            return TrialState.FAIL, None
        values = [result.get(m) for m in self.metrics]
        if not all(is_score(v) for v in values):
            return TrialState.FAIL, None
        epoch = int(result.get("epoch", self.max_epoch))
        if epoch < self.max_epoch:
            return TrialState.PRUNED, None
        history = list(self.history.get(trial_id, {}).values()) or [values[0]]
        if len(self.metrics) == 1:
            # the best epoch's value: the checkpoint a user would keep
            values = [best(history, self.modes[0])]
        return TrialState.COMPLETE, [float(v) for v in values]

    def _tell(self, config: _Config) -> None:
        states = [state for state, _ in config.outcomes.values()]
        if TrialState.FAIL in states:
            self.study.tell(config.number, state=TrialState.FAIL)
        elif TrialState.PRUNED in states:
            self.study.tell(config.number, state=TrialState.PRUNED)
        else:
            per_replica = [values for _, values in config.outcomes.values()]
            mean = [sum(v[i] for v in per_replica) / len(per_replica) for i in range(len(self.metrics))]
            self.study.tell(config.number, values=mean)
        self._trials.pop(config.number, None)

    # -- extend ----------------------------------------------------------------
    def seed_from(self, earlier: dict) -> list[str]:
        """Give this (new, empty) study every ended trial of an earlier segment's searcher
        (`earlier`: its pickled state), as frozen trials under this space's distributions, so the
        sampler learns from them; returns why each one left out was left out. Optuna refuses a
        trial whose value lies outside its distribution (a narrowed range, a dropped choice):
        such a trial still counts in the report and MLflow, not for the sampler. A dimension
        no longer searched is dropped from the frozen trial, as a conditional one is."""
        previous = earlier["study"].get_trials(deepcopy=False)
        numbers = {n: [tid for tid, (m, _) in earlier["tune_trials"].items() if m == n] for n in range(len(previous))}
        for tid, n in earlier.get("carried", {}).items():
            numbers.setdefault(n, []).append(tid)
        if self.rungs is not None and earlier.get("rungs") is not None:
            self.rungs.carry(earlier["rungs"])  # several objectives: MOASHA's rung records
        left_out = []
        for frozen in previous:
            ids = numbers.get(frozen.number, [])
            if frozen.state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
                left_out.append(f"{', '.join(ids) or frozen.number}: {frozen.state.name.lower()}, never ended")
                continue
            values = earlier["configs"][frozen.number].params if frozen.number in earlier["configs"] else frozen.user_attrs.get(PARAMS_ATTR, {})
            why = self._add_frozen(frozen, values, ids)
            if why:
                left_out.append(f"{', '.join(ids) or frozen.number}: {why}")
        return left_out

    def _add_frozen(self, frozen, values: dict[str, Any], tune_ids: list[str]) -> Optional[str]:
        params, dists = {}, {}
        for path, value in values.items():
            if path not in dict(self.spec.dims):
                continue
            dom = self.spec.domain(path)
            if dom.kind in ("choice", "grid", CASES) and value not in dom.values:
                return f"{path}={value!r} is not among {list(dom.values)}"
            if dom.is_range and not dom.low <= value <= dom.high:
                return f"{path}={value!r} is outside [{dom.low}, {dom.high}]"
            params[path], dists[path] = self._encode(path, value), distribution(dom)
        try:
            added = optuna.trial.create_trial(
                state=frozen.state, values=frozen.values,  # a pruned trial's value is its last reported one, as Optuna tells it
                params=params, distributions=dists, intermediate_values=dict(frozen.intermediate_values),
                user_attrs={**frozen.user_attrs, PARAMS_ATTR: values, TUNE_IDS_ATTR: tune_ids},
            )
        except ValueError as e:  # what Optuna refuses besides (checked above, so not expected)
            return str(e).splitlines()[0]
        self.study.add_trial(added)
        number = len(self.study.get_trials(deepcopy=False)) - 1
        self.carried.update({tid: number for tid in tune_ids})
        return None

    # -- resume ----------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_trials"] = {}
        return state

    def save(self, checkpoint_path: str) -> None:
        import pickle

        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.__getstate__(), fh)

    def restore(self, checkpoint_path: str) -> None:
        import pickle

        with open(checkpoint_path, "rb") as fh:
            self.__dict__.update(pickle.load(fh))


def distribution(dom: Domain) -> optuna.distributions.BaseDistribution:
    """The distribution `SweepSearcher._suggest` samples `dom` from (what a carried-over trial
    is stored under)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if dom.kind == CASES:
        return CategoricalDistribution(labels(dom))
    if dom.kind in ("choice", "grid"):
        return CategoricalDistribution(list(dom.values) if _categorical(dom) else list(range(len(dom.values))))
    if dom.kind == "int":
        return IntDistribution(int(dom.low), int(dom.high))
    return FloatDistribution(float(dom.low), float(dom.high), log=dom.kind == "loguniform")

