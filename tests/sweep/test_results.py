"""A trial's row in the report, read from the files Tune and Ray Train leave."""

import json
from pathlib import Path

from raysweep.sweep.layout import SweepLayout
from raysweep.sweep.results import _row

METRIC = "val/macro_f1"


def write_checkpoint(layout: SweepLayout, trial: str, epoch: int, f1s: list[float]) -> None:
    """A Train checkpoint of `trial` at `epoch` whose history holds one F1 per epoch."""
    history = [{"epoch": e + 1, METRIC: f} for e, f in enumerate(f1s[:epoch])]
    directory = Path(layout.train_storage) / trial / f"checkpoint_{epoch:03d}"
    directory.mkdir(parents=True)
    (directory / "state.pt").write_bytes(b"")
    (directory / "meta.json").write_text(json.dumps({"epoch": epoch, "metrics": history[-1], "history": history}))


def test_a_stopped_trials_row_ends_at_the_last_epoch_tune_saw(tmp_path):
    """ASHA stopped the trial at epoch 1; its worker group trained two more epochs before Ray's
    fate-sharing killed it. Those epochs were not judged, so they are not the trial's."""
    layout = SweepLayout(str(tmp_path), "s")
    f1s = [0.2, 0.5, 0.9]
    write_checkpoint(layout, "t1", 1, f1s)
    write_checkpoint(layout, "t1", 3, f1s)
    stopped = {"trial_id": "t1", "status": "TERMINATED", "config": {}, "relative_logdir": None, "last_epoch": 1}
    row = _row(layout, stopped, METRIC, "max", [])
    assert (row.epochs_done, row.metric, row.best_epoch) == (1, 0.2, 1)
    assert row.checkpoint.endswith("checkpoint_001")

    running = {**stopped, "status": "RUNNING"}  # still going (or its driver was killed): all it has
    row = _row(layout, running, METRIC, "max", [])
    assert (row.epochs_done, row.metric, row.best_epoch) == (3, 0.9, 3)
    assert row.checkpoint.endswith("checkpoint_003")


def test_a_rows_outcome_says_whether_the_trial_finished_or_was_stopped(tmp_path):
    layout = SweepLayout(str(tmp_path), "s")
    write_checkpoint(layout, "t1", 1, [0.2])
    write_checkpoint(layout, "t2", 3, [0.2, 0.5, 0.9])
    state = {"status": "TERMINATED", "config": {}, "relative_logdir": None}
    stopped = _row(layout, {**state, "trial_id": "t1", "last_epoch": 1}, METRIC, "max", [], epochs=3, rule="asha")
    finished = _row(layout, {**state, "trial_id": "t2", "last_epoch": 3}, METRIC, "max", [], epochs=3, rule="asha")
    assert (stopped.status, stopped.outcome) == ("TERMINATED", "stopped (asha, epoch 1)")
    assert (finished.status, finished.outcome) == ("TERMINATED", "finished")
