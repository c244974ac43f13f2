"""What the live view of a sweep says, as text: no Ray, no terminal.

`Progress` turns the trials (each a `TrialLine`: id, Tune's status, searched parameters,
last epoch, best objective so far) into the table and the one-line summaries that
`raysweep.sweep.callbacks.ProgressTable` shows: 100 columns at most, parameters by their
short names (`optimizer.lr` -> `lr`), only those that differ between trials, each trial's
state in words (`finished`, `stopped (asha, epoch 3)`, `failed`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from raysweep.scores import best, rank_key
from raysweep.sweep.outcome import describe
from raysweep.tables import WIDTH, clip, fit_table, fmt, short_names

PARAM_CELL = 12  # a parameter's value is cut to this many characters before the table is fitted


@dataclass
class TrialLine:
    trial_id: str
    status: str  # Tune's: PENDING, RUNNING, TERMINATED, ERROR, PAUSED
    params: dict[str, Any] = field(default_factory=dict)
    epoch: Optional[int] = None
    best: Optional[float] = None
    interrupted: bool = False  # left unfinished by Ctrl-C (resume continues it), whatever Tune's status says

    @property
    def ended(self) -> bool:
        return self.status in ("TERMINATED", "ERROR") and not self.interrupted


def param_cell(value: Any) -> str:
    return clip(fmt(value, digits=3), PARAM_CELL)


def metric_header(metric: str) -> str:
    """A metric's column header: its last part (`val/macro_f1` -> `macro_f1`)."""
    return clip(metric.rsplit("/", 1)[-1], 16)


def varying(dims: list[str], params: list[dict[str, Any]]) -> list[str]:
    """The dimensions whose value differs between the trials' `params` (all of them while
    there is one trial or none: nothing to compare yet)."""
    if len(params) < 2:
        return list(dims)
    return [d for d in dims if len({json.dumps(p.get(d), sort_keys=True, default=str) for p in params}) > 1]


@dataclass
class Progress:
    dims: list[str]
    metric: str
    mode: str
    epochs: int  # the epoch a trial finishes at (search.max_t, else train.epochs)
    total: Optional[int] = None  # trials the sweep will run
    rule: Optional[str] = None  # the trial scheduler: none, asha, hyperband, median

    def outcome(self, t: TrialLine) -> str:
        return describe(t.status, last_epoch=t.epoch, epochs=self.epochs, rule=self.rule, interrupted=t.interrupted)

    def counts(self, lines: list[TrialLine]) -> str:
        done = sum(t.ended for t in lines)
        running = sum(t.status == "RUNNING" and not t.interrupted for t in lines)
        cut_short = sum(t.interrupted for t in lines)
        total = max(self.total or 0, len(lines))
        return f"{done}/{total} done, {running} running" + (f", {cut_short} interrupted" if cut_short else "")

    def best(self, lines: list[TrialLine]) -> Optional[TrialLine]:
        return best(lines, self.mode, key=lambda t: t.best)

    def summary(self, lines: list[TrialLine]) -> str:
        """`3/8 done, 2 running; best val/macro_f1 0.9756 (034b8381)`"""
        best = self.best(lines)
        tail = f"; best {self.metric} {fmt(best.best)} ({best.trial_id})" if best else ""
        return clip(self.counts(lines) + tail, WIDTH)

    def ended_line(self, t: TrialLine, lines: list[TrialLine]) -> str:
        """`[3/8] trial 2db2d791 stopped (asha, epoch 1), best val/macro_f1 0.339`"""
        done = sum(x.ended for x in lines)
        total = max(self.total or 0, len(lines))
        best = f", best {self.metric} {fmt(t.best)}" if t.best is not None else ""
        return clip(f"[{done}/{total}] trial {t.trial_id} {self.outcome(t)}{best}", WIDTH)

    def table(self, lines: list[TrialLine], width: int = WIDTH, max_rows: Optional[int] = None) -> list[str]:
        """The trials as table lines within `width` (and `max_rows` trials, the running ones
        and the best kept; a last line counts the rest)."""
        shown = self._rows_to_show(lines, max_rows)
        dims = varying(self.dims, [t.params for t in lines])
        names = short_names(dims)
        # the best value so far (the summary line above names the metric in full)
        header = ["trial", "status", *(names[d] for d in dims), "epoch", metric_header(self.metric)]
        rows = [
            [t.trial_id, self.outcome(t), *(param_cell(t.params.get(d)) for d in dims), f"{t.epoch or 0}/{self.epochs}", fmt(t.best)]
            for t in shown
        ]
        params = range(2, 2 + len(dims))
        text, dropped = fit_table(header, rows, width, shrinkable=params, drop=params[::-1])
        out = text.splitlines()
        notes = []
        if len(shown) < len(lines):
            notes.append(f"{len(lines) - len(shown)} more trial(s) not shown")
        if dropped:
            notes.append(f"{len(dropped)} parameter column(s) left out for width")
        if notes:
            out.append(clip("(" + "; ".join(notes) + ")", width))
        return out

    def _rows_to_show(self, lines: list[TrialLine], max_rows: Optional[int]) -> list[TrialLine]:
        if max_rows is None or len(lines) <= max_rows:
            return lines
        ranked = sorted(range(len(lines)), key=lambda i: self._rank(lines[i]))
        keep = sorted(ranked[: max(1, max_rows)])  # in the trials' own order, so rows do not jump around
        return [lines[i] for i in keep]

    def _rank(self, t: TrialLine) -> tuple[bool, float]:
        """Running trials first, then the best."""
        return (t.status != "RUNNING", rank_key(t.best, self.mode))
