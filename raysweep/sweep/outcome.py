"""How a trial ended, in the words a user reads: the live table, `raysweep report`, MLflow.

Tune says `TERMINATED` both for a trial that trained all its epochs and for one the
scheduler stopped early, and `ERROR` for a failure. A user comparing trials needs the
difference: `finished`, `stopped (asha, epoch 3)`, `failed`, `interrupted` (Ctrl-C; resume
continues it), `running`, `pending`.

    describe("TERMINATED", last_epoch=3, epochs=12, rule="asha")   # 'stopped (asha, epoch 3)'
"""

from __future__ import annotations

from typing import Optional

FINISHED = "finished"
FAILED = "failed"
INTERRUPTED = "interrupted"
_TUNE_WORDS = {"RUNNING": "running", "PENDING": "pending", "PAUSED": "paused", "ERROR": FAILED}


def stopped_early(status: str, last_epoch: Optional[int], epochs: int) -> bool:
    """A trial Tune ended before its last epoch: a scheduler (or the time budget) stopped it."""
    return status == "TERMINATED" and (last_epoch or 0) < epochs


def stopped(rule: Optional[str], last_epoch: Optional[int]) -> str:
    """`stopped (asha, epoch 3)`; `stopped (epoch 3)` when no scheduler did it (the time budget)."""
    by = f"{rule}, " if rule and rule != "none" else ""
    return f"stopped ({by}epoch {last_epoch or 0})"


def describe(status: str, *, last_epoch: Optional[int], epochs: int, rule: Optional[str], interrupted: bool = False) -> str:
    """One word (or a short phrase) for a trial's state, from Tune's status and its last epoch."""
    if status == "TERMINATED":
        if (last_epoch or 0) >= epochs:
            return FINISHED
        return INTERRUPTED if interrupted else stopped(rule, last_epoch)
    if interrupted and status in ("RUNNING", "PENDING", "PAUSED"):
        return INTERRUPTED
    return _TUNE_WORDS.get(status, status.lower())


def error_trace(trial) -> str:
    """A failed Tune trial's error trace (Tune's error.txt), '' if it cannot be read."""
    try:
        with open(trial.error_file) as fh:
            return fh.read()
    except (OSError, TypeError):
        return ""


def last_line(text: str) -> str:
    """The last line of an error trace: the exception and its message."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error (see the trial's error.txt)"
