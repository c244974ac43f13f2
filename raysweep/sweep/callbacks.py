"""Driver-side Tune callbacks: free a stopped trial's workers, show progress.

`WorkerGroupReaper`: frees the placement group a stopped trial leaves
behind, once its Train controller is dead (`raysweep.sweep.placement`
explains the leak and why the wait matters).

`ProgressTable`: a compact live view of the trials, their searched
parameters and the objective (not every config key, as Tune's reporter does),
in place on a terminal and as plain lines elsewhere.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from typing import Any, Optional

from ray.tune import Callback

from raysweep.scores import best
from raysweep.sweep.interrupt import interrupted
from raysweep.sweep.outcome import error_trace, last_line
from raysweep.sweep.placement import PendingGroups
from raysweep.sweep.progress import Progress, TrialLine
from raysweep.terminal import Console, current, shown_path

from trainables.report_keys import CONTROLLER_KEY, PG_KEY

log = logging.getLogger(__name__)


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
    """The live view of the trials (`raysweep.sweep.progress` says what it shows). On a terminal
    it is redrawn in place, at most once a second and whenever a trial ends; elsewhere (a pipe,
    a log file) it prints a line when a trial ends and the one-line summary when that changed,
    at most every `every_s`. A failed trial is one line and where its full trace is."""

    def __init__(self, dims: list[str], metric: str, mode: str, epochs: int, *, total: Optional[int] = None, rule: Optional[str] = None, every_s: float = 30.0, out: Optional[Console] = None):
        self.progress = Progress(list(dims), metric, mode, epochs, total=total, rule=rule)
        self.every_s = every_s
        self._best: dict[str, float] = {}
        self.__dict__.update(self._transient(), out=out)

    @staticmethod
    def _transient() -> dict[str, Any]:
        return {"out": None, "_drawn_at": float("-inf"), "_dirty": False, "_said": None, "_ending": {}, "_latest": {}, "_ended_ids": set()}

    def __getstate__(self):  # the terminal and the drawing state are not part of the experiment's
        return {k: v for k, v in self.__dict__.items() if k not in self._transient()}

    def __setstate__(self, state):
        if "progress" not in state:  # pickled by an earlier raysweep: its fields, none of the new ones
            progress = Progress(state["dims"], state["metric"], state["mode"], state["epochs"])
            state = {"progress": progress, "every_s": 30.0, "_best": state.get("_best", {})}
        self.__dict__.update(self._transient(), **state)

    def _console(self) -> Console:
        return self.out or current()

    def setup(self, stop=None, num_samples=None, total_num_samples=None, **info) -> None:
        """On resume this table is the one pickled when the sweep started: the console carries
        the sweep's trial count, stopping rule and last epoch as they are now (from its manifest)."""
        self.progress = dataclasses.replace(self.progress, **self._console().view)
        if self.progress.total is None and total_num_samples and total_num_samples < sys.maxsize:
            self.progress.total = total_num_samples

    def on_trial_start(self, iteration: int, trials: list, trial, **info) -> None:
        self._changed(trials)

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        self._latest[trial.trial_id] = result  # Tune updates trial.last_result only after the callbacks
        best = self._best_of_values(self._best.get(trial.trial_id), result.get(self.progress.metric))
        if best is not None:
            self._best[trial.trial_id] = best
        self._changed(trials)

    def _best_of_values(self, *values) -> Optional[float]:
        """The best of the finite numbers among `values` (None if there is none)."""
        found = best(values, self.progress.mode)
        return None if found is None else float(found)

    def _best_of(self, trial) -> Optional[float]:
        """The trial's best objective: seen here, or (a trial restored on resume, which reports
        nothing again) as Tune kept it in the trial's metric analysis."""
        kept = ((getattr(trial, "metric_analysis", None) or {}).get(self.progress.metric) or {}).get(self.progress.mode)
        return self._best_of_values(self._best.get(trial.trial_id), kept)

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        if not interrupted():  # after Ctrl-C, Tune marks the trials it cut short TERMINATED too
            self._ended_ids.update(t.trial_id for t in trials if t.status in ("TERMINATED", "ERROR"))
        if self._dirty:
            self._changed(trials)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._trial_ended(trials, trial, "TERMINATED")

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        console = self._console()
        text = error_trace(trial)
        console.terminal.say(f"trial {trial.trial_id} failed: {last_line(text)}")
        where = (console.keep_error(trial.trial_id, text) if text else None) or trial.error_file
        if where:
            console.terminal.say(f"  full trace: {shown_path(where)}")
        self._trial_ended(trials, trial, "ERROR")

    def on_experiment_end(self, trials: list, **info) -> None:
        self.print_table(trials, force=True)
        self._console().terminal.release()

    def _changed(self, trials: list) -> None:
        self._dirty = True
        wait = 1.0 if self._console().terminal.tty else self.every_s
        if time.monotonic() - self._drawn_at >= wait:
            self.print_table(trials)

    def _trial_ended(self, trials: list, trial, status: str) -> None:
        """Tune calls the hooks before it sets the trial's new status: `status` is that one
        (unless the user interrupted the sweep: the trial is then left to resume)."""
        if not interrupted():
            self._ending = {trial.trial_id: status}
            self._ended_ids.add(trial.trial_id)
        terminal = self._console().terminal
        if terminal.tty:
            self.print_table(trials)
        elif status != "ERROR":  # a failure has said its line already
            lines = self.lines(trials)
            terminal.say(self.progress.ended_line(next(t for t in lines if t.trial_id == trial.trial_id), lines))

    def lines(self, trials: list) -> list[TrialLine]:
        stopped_by_user = interrupted()
        lines = []
        for t in trials:
            status = self._ending.get(t.trial_id, t.status)
            lines.append(TrialLine(
                t.trial_id, status, {d: (t.config or {}).get(d) for d in self.progress.dims},
                (self._latest.get(t.trial_id) or t.last_result or {}).get("epoch"), self._best_of(t),
                interrupted=stopped_by_user and t.trial_id not in self._ended_ids,
            ))
        return lines

    def print_table(self, trials: list, force: bool = False) -> None:
        """Show the trials now: the table in place on a terminal; elsewhere the summary line,
        if it changed since it was last printed (or `force`)."""
        self._drawn_at = time.monotonic()
        self._dirty = False
        terminal = self._console().terminal
        lines = self.lines(trials)
        summary = self.progress.summary(lines)
        if terminal.tty:
            terminal.show([summary, *self.progress.table(lines, terminal.width, max_rows=terminal.height - 4)])
        elif force or summary != self._said:
            terminal.say(summary)
            self._said = summary
