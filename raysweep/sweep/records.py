"""A trial's history, the same in every record a user reads.

What the sweep's driver sees of a trial is its history: each result Tune judged, passed to
every driver callback and to the searcher. Tune's `result.json`, the MLflow run's metrics and
the Optuna study's intermediate values are written from it there, each exactly once. A killed
driver loses what it had not yet written (Tune syncs its files every few seconds, the MLflow
logger works behind, the searcher is snapshotted every few seconds), while the trial's newest
checkpoint holds every epoch it trained, and a resumed trial continues from that checkpoint.
So at a trial's first result in a driver, each record takes the epochs before it that it
lacks from the checkpoint (`earlier_epochs`); Tune's own file is restored by `ResultLog`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Iterable

from ray.tune.logger import JsonLoggerCallback

log = logging.getLogger(__name__)

History = Callable[[str], list[dict]]  # trial id -> its newest checkpoint's per-epoch metrics


def epoch_of(result: dict) -> int:
    return int(result.get("epoch", 0))


def earlier_epochs(history: Callable[[], list[dict]], first: int, have: Iterable[int]) -> list[dict]:
    """The epochs before `first` (a trial's first result in this driver) that a record lacks,
    oldest first, from the trial's checkpointed `history` (read only when something is missing)."""
    have = {e for e in have if e < first}
    if len(have) >= first - 1:
        return []
    return [h for h in history() if epoch_of(h) < first and epoch_of(h) not in have]


class ResultLog(JsonLoggerCallback):
    """Tune's `result.json` logger, which keeps a restarted trial's earlier lines.

    Tune restores the file from storage only for a trial with a Tune checkpoint (raysweep's live
    in Ray Train's storage), so a resumed trial's file started empty and its next sync replaced
    the stored one: after `raysweep resume` only the epochs trained since were left in it. Here
    the file starts as the stored lines plus the epochs the trial's newest checkpoint holds that
    they lack, up to that checkpoint, since the trial continues from it and reports the rest again."""

    def __init__(self, history: History):
        super().__init__()
        self._history = history
        self._written: dict[str, set[int]] = {}  # trial id -> epochs its file holds

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        """Each epoch once: a trial whose driver was killed after its last epoch reports that
        epoch again when resumed (its file may already hold it). A result after a gap first
        brings in the epochs before it from the trial's checkpoint: a trial whose process died
        after checkpointing an epoch that Tune never heard of is restarted by Tune in this driver
        and continues after that epoch."""
        written = self._written.setdefault(trial.trial_id, set())
        if "epoch" in result:
            epoch = epoch_of(result)
            if epoch in written:
                return
            for earlier in earlier_epochs(lambda: self._history(trial.trial_id), epoch, written):
                written.add(epoch_of(earlier))
                super().log_trial_result(iteration, trial, {**earlier, "trial_id": trial.trial_id})
            written.add(epoch)
        super().log_trial_result(iteration, trial, result)

    def log_trial_start(self, trial) -> None:
        if trial not in self._trial_files:
            try:
                self._restore(trial)
            except Exception as e:  # Tune's own file then starts as it would have
                log.warning("trial %s: could not restore its result.json (%s: %s)", trial.trial_id, type(e).__name__, e)
        super().log_trial_start(trial)

    def _restore(self, trial) -> None:
        from ray.air.constants import EXPR_RESULT_FILE

        trial.init_local_path()
        local = Path(trial.local_path, EXPR_RESULT_FILE)
        lines = {**_epochs(_stored_text(trial, EXPR_RESULT_FILE)), **_epochs(local.read_text() if local.exists() else "")}
        history = self._history(trial.trial_id)
        resumes_after = max((epoch_of(h) for h in history), default=0)
        for h in history:
            lines.setdefault(epoch_of(h), {**h, "trial_id": trial.trial_id})
        kept = [e for e in sorted(lines) if e <= resumes_after]
        local.write_text("".join(json.dumps(lines[e]) + "\n" for e in kept))
        self._written[trial.trial_id] = set(kept)


def _stored_text(trial, name: str) -> str:
    fs, path = trial.storage.storage_filesystem, f"{trial.storage.trial_fs_path}/{name}"
    try:
        with fs.open_input_stream(path) as f:
            return f.read().decode()
    except (FileNotFoundError, OSError):
        return ""


def _epochs(text: str) -> dict[int, dict]:
    """A result.json's lines by epoch (the last of each), skipping a line a kill cut short."""
    out: dict[int, dict] = {}
    for line in text.splitlines():
        try:
            result = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "epoch" in result:
            out[epoch_of(result)] = result
    return out
