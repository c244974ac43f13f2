"""Ctrl-C during a sweep.

Tune catches the first SIGINT itself: it ends its loop, snapshots the experiment and returns
from `Tuner.fit()` as from a sweep that ended, after logging a hint to resume with
`Tuner.restore(...)`. raysweep must know that it happened, to exit 130 with the `raysweep resume`
line and to mark the unfinished trials interrupted rather than finished. `InterruptWatch`, a
Tune callback, wraps Tune's handler once Tune has installed it (its controller calls the
callbacks' `setup` after that), so the signal is seen first here and Tune's handling stays
as it is. No public Tune API says whether a run was interrupted.
"""

from __future__ import annotations

import logging
import signal
import threading

from ray.tune import Callback

_INTERRUPTED = threading.Event()


def interrupted() -> bool:
    """Whether the user interrupted the sweep this process runs."""
    return _INTERRUPTED.is_set()


# Tune's own words on an interrupted run, which raysweep's one line replaces: they name
# `Tuner.restore(path=..., trainable=...)`, which a raysweep user cannot call
_TUNE_HINTS = ("Stop signal received", "Experiment has been interrupted", "Trials did not complete")


def _not_tunes_hint(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_TUNE_HINTS)


class InterruptWatch(Callback):
    """Sees Ctrl-C (see above) and, at the end, leaves the sweep's `INTERRUPTED_FILE`, so that
    `raysweep report` calls its unfinished trials interrupted, not running, until resumed."""

    def __init__(self, layout=None):
        self.layout = layout

    def on_experiment_end(self, trials: list, **info) -> None:
        if interrupted() and self.layout is not None:
            import json
            import time

            from raysweep.sweep.layout import INTERRUPTED_FILE

            self.layout.write_text(INTERRUPTED_FILE, json.dumps({"at": time.time()}))

    def setup(self, **info) -> None:
        _INTERRUPTED.clear()
        tune_log = logging.getLogger("ray.tune.tune")
        if _not_tunes_hint not in tune_log.filters:
            tune_log.addFilter(_not_tunes_hint)
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only; Tune installs nothing elsewhere either
        tune_handler = signal.getsignal(signal.SIGINT)

        def seen(signum, frame):
            _INTERRUPTED.set()
            if callable(tune_handler):
                tune_handler(signum, frame)
            else:  # Tune installed none (TUNE_DISABLE_SIGINT_HANDLER): Python's own
                raise KeyboardInterrupt

        signal.signal(signal.SIGINT, seen)
