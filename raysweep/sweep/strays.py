"""Trials a killed driver started after Tune's last snapshot, taken over by their rerun.

Tune snapshots its trial list every few seconds (`experiment.EXPERIMENT_SNAPSHOT_S`). A trial
started after the last snapshot before a kill is unknown to `Tuner.restore`, and the searcher,
restored to that same moment, suggests its configuration again as a new trial. The first
trial's work is still in storage (`<train storage>/<its id>/checkpoint_*`, its MLflow run):
the new trial with the same configuration takes both over, continuing from the newest
checkpoint in the same MLflow run, so a kill repeats no epoch however soon after a trial's
start it came (with one-second inline trials, whole trials fit in a snapshot's interval).

    found = strays(layout)                                     # the resuming driver
    adopt(cfg, train_storage, trial_id, found, opener, name)  # a new trial, before it trains
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

from raysweep.storage import filesystem, join
from trainables.checkpoint_files import read_config, stored_checkpoints

log = logging.getLogger(__name__)

# what may differ between two runs of one trial: where it is tracked (a resumed sweep is
# tracked in the store it started with, which its first run may have named differently)
UNCOMPARED = ("tracking",)


def strays(layout) -> tuple[str, ...]:
    """The ids of trials with checkpoints in the sweep's storage that no Tune snapshot of any of
    the sweep's segments knows."""
    import pyarrow.fs

    from raysweep.sweep.segments import segments, trial_states

    known = {s["trial_id"] for segment in segments(layout) for s in trial_states(segment)}
    fs, root = filesystem(layout.train_storage)
    folders = fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True))
    ids = [f.base_name for f in folders if f.type == pyarrow.fs.FileType.Directory and f.base_name not in known]
    return tuple(i for i in ids if _newest(join(layout.train_storage, i)) is not None)


def _newest(trial_uri: str):
    whole = [s for s in stored_checkpoints(trial_uri) if s.meta is not None and s.has_state]
    return whole[-1] if whole else None  # names carry the zero-padded epoch


def _same_trial(cfg, stored_uri: str) -> bool:
    theirs = read_config(stored_uri)
    if theirs is None:
        return False
    ours = cfg.model_dump(mode="json", by_alias=True)
    return {k: v for k, v in ours.items() if k not in UNCOMPARED} == {k: v for k, v in theirs.items() if k not in UNCOMPARED}


def adopt(cfg, train_storage: str, trial_id: str, candidates: Sequence[str], opener=None, run_name: str = "") -> Optional[str]:
    """Move the checkpoints of a stray trial with this trial's configuration into this trial's
    folder (a trial with checkpoints of its own adopts nothing) and hand its MLflow run over;
    return where the newest of them is now, or None. The move is the claim: of two trials with
    one configuration, one gets it. Ray Train's record of the stray's run names the old folder:
    it is moved aside, and a Train run starts from the returned checkpoint instead."""
    import pyarrow.fs

    from raysweep.sweep.checkpoints import SNAPSHOT_FILE

    own = join(train_storage, trial_id)
    if not candidates or stored_checkpoints(own):
        return None
    fs, own_path = filesystem(own)
    for stray in candidates:
        newest = _newest(join(train_storage, stray))
        if newest is None or not _same_trial(cfg, newest.uri):
            continue
        _, stray_path = filesystem(join(train_storage, stray))
        try:
            fs.delete_dir(own_path)  # empty, or absent
        except (FileNotFoundError, OSError):
            pass
        try:
            fs.move(stray_path, own_path)
        except (FileNotFoundError, OSError):
            continue  # another trial claimed it first
        log.warning("trial %s continues trial %s (started after the killed driver's last snapshot) from epoch %s", trial_id, stray, newest.meta["epoch"])
        record = join(own_path, SNAPSHOT_FILE)
        if fs.get_file_info(record).type == pyarrow.fs.FileType.File:
            fs.move(record, record + ".adopted")
        if opener is not None and newest.meta.get("mlflow_run_id"):
            import ray

            # the sweep's run opener (`raysweep.tracking.trial_runs`) renames the run as this trial's
            ray.get(opener.hand_over.remote(newest.meta["mlflow_run_id"], trial_id, run_name))
        return join(own, newest.name)
    return None

