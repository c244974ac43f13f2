"""Driver-side Tune callbacks: free a stopped trial's workers, show progress.

`WorkerGroupReaper`: frees the placement group a stopped trial leaves
behind, once its Train controller is dead (`raysweep.sweep.placement`
explains the leak and why the wait matters).

`ProgressTable`: a compact live table of the trials, their searched
parameters and the objective (not every config key, as Tune's reporter does).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any, Optional, TextIO

from ray.tune import Callback

from raysweep.sweep.placement import CONTROLLER_KEY, PendingGroups
from raysweep.tables import table

log = logging.getLogger(__name__)

from trainables.session import PG_KEY  # noqa: E402


class WorkerGroupReaper(Callback):
    """Frees the worker group of every ended trial once its Train controller is dead
    (see `raysweep.sweep.placement`); a finished run's group is already gone."""

    def __init__(self):
        self.groups = PendingGroups()

    def _ended(self, trial) -> None:
        last = trial.last_result or {}
        self.groups.add(last.get(PG_KEY), last.get(CONTROLLER_KEY))
        self.groups.sweep()

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._ended(trial)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._ended(trial)

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        if self.groups.pending:
            self.groups.sweep()

    def on_experiment_end(self, trials: list, **info) -> None:
        self.groups.drain()


class ProgressTable(Callback):
    def __init__(self, dims: list[str], metric: str, mode: str, epochs: int, every_s: float = 15.0, out: Optional[TextIO] = None):
        self.dims = dims
        self.metric = metric
        self.mode = mode
        self.epochs = epochs
        self.every_s = every_s
        self.out = out
        self._last = 0.0
        self._best: dict[str, float] = {}

    def __getstate__(self):  # the stream is not part of the experiment's state
        state = self.__dict__.copy()
        state["out"] = None
        return state

    def _stream(self) -> TextIO:
        return self.out or sys.stdout

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        value = result.get(self.metric)
        if isinstance(value, (int, float)) and math.isfinite(value):
            best = self._best.get(trial.trial_id)
            better = best is None or (value > best if self.mode == "max" else value < best)
            if better:
                self._best[trial.trial_id] = float(value)
        if time.monotonic() - self._last >= self.every_s:
            self.print_table(trials)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self.print_table(trials)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._stream().write(f"trial {trial.trial_id} failed: {_error_line(trial)}\n")
        self.print_table(trials)

    def on_experiment_end(self, trials: list, **info) -> None:
        self.print_table(trials, force=True)

    def print_table(self, trials: list, force: bool = False) -> None:
        self._last = time.monotonic()
        rows = []
        for t in trials:
            last = t.last_result or {}
            config = t.config or {}
            rows.append([
                t.trial_id, t.status, *(config.get(d) for d in self.dims),
                f"{last.get('epoch', 0)}/{self.epochs}", last.get(self.metric), self._best.get(t.trial_id),
            ])
        done = sum(t.status in ("TERMINATED", "ERROR") for t in trials)
        text = table(["trial", "status", *self.dims, "epoch", self.metric, "best"], rows)
        self._stream().write(f"\n{done}/{len(trials)} trials done\n{text}\n")
        self._stream().flush()


def _error_line(trial) -> str:
    """The last line of the trial's error trace (the exception and its message)."""
    try:
        with open(trial.error_file) as fh:
            lines = [line for line in fh.read().strip().splitlines() if line.strip()]
        return lines[-1] if lines else "unknown error"
    except (OSError, TypeError):
        return "see the trial's error.txt"
