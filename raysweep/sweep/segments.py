"""The Tune experiments a sweep is made of: the one `raysweep run` started, then one per
`raysweep extend` (`raysweep.sweep.extension` says why).

    <storage>/<sweep id>/                  segment 0: the sweep's own Tune experiment
        extension-1/                       segment 1: a Tune experiment of its own
            raysweep_sweep.yaml            the sweep file it ran (the earlier one + its --set)
            experiment_state-*.json ...    Tune's files, as in segment 0
        extension-2/ ...
        train/<trial id>/                  every segment's trials' checkpoints (ids never repeat)

A segment is a `SweepLayout` whose `uri` is its Tune experiment's directory. Only files are
read here (no Ray), so `raysweep report` merges the segments of a running or killed sweep too.
"""

from __future__ import annotations

import json
from typing import Optional

from raysweep.sweep.layout import INTERRUPTED_FILE, SweepLayout

EXTENSION_PREFIX = "extension-"
EXTENSIONS_KEY = "extensions"  # the manifest's list of extension records
UNFINISHED = ("RUNNING", "PENDING", "PAUSED")  # Tune's statuses of a trial it has not ended


def extension_name(number: int) -> str:
    return f"{EXTENSION_PREFIX}{number}"


def segments(layout: SweepLayout) -> list[SweepLayout]:
    """The sweep's segments, oldest first: the sweep itself, then each extension its manifest
    records (an extension is recorded once its sweep file is written, so a folder left by an
    extend killed before that is no segment, and the next extend takes its name)."""
    try:
        manifest = layout.manifest()
    except (FileNotFoundError, OSError):  # a Tune experiment raysweep did not start: itself alone
        return [layout]
    return [layout, *(SweepLayout(layout.uri, rec["segment"]) for rec in extensions(manifest))]


def relative(layout: SweepLayout, segment: SweepLayout) -> str:
    """The segment's directory inside the sweep's ('' for the sweep's own experiment)."""
    return "" if segment == layout else segment.sweep_id


def state_files(segment: SweepLayout, prefix: str, suffix: str) -> list[str]:
    """The segment's Tune files named `prefix*suffix`, oldest first (names carry their time)."""
    return sorted(n for n in segment.listdir() if n.startswith(prefix) and n.endswith(suffix))


def trial_states(segment: SweepLayout) -> list[dict]:
    """Each trial in the segment's latest Tune snapshot: id, status, config, directory (relative
    to the segment) and the last epoch Tune saw.

    Tune's public reader of this file is `ray.tune.ExperimentAnalysis` (`ResultGrid`), but it
    imports Ray and Tune (seconds; `raysweep report` takes a fraction of one and a test holds it
    to importing neither Ray nor torch). So the snapshot's JSON is read here, its few fields
    only: `trial_data`, each entry a (trial state JSON, runtime metadata JSON) pair as
    `Trial.get_json_state` writes it in Ray 2.x (ray/tune/experiment/trial.py). The tests read
    the same sweeps back through `ExperimentAnalysis` and compare (tests/e2e/test_record_agrees.py)."""
    names = state_files(segment, "experiment_state-", ".json")
    if not names:
        return []
    snapshot = json.loads(segment.read_text(names[-1]))
    trials = []
    for entry in snapshot.get("trial_data", []):
        state = json.loads(entry[0])
        trial = {k: state.get(k) for k in ("trial_id", "status", "config", "relative_logdir")}
        try:
            last = (json.loads(entry[1]) if isinstance(entry[1], str) else entry[1]).get("last_result") or {}
        except (IndexError, AttributeError, ValueError):
            last = {}
        trial["last_epoch"] = last.get("epoch")
        trials.append(trial)
    return trials


def unfinished(layout: SweepLayout, segment: SweepLayout, num_trials: int) -> Optional[str]:
    """Why the segment is not over (a trial Tune had not ended, fewer trials than it was to run,
    Ctrl-C), or None when every trial it was to run has ended."""
    states = trial_states(segment)
    open_ = [s["trial_id"] for s in states if s.get("status") in UNFINISHED]
    if open_:
        return f"{len(open_)} trial(s) not ended"
    if len(states) < num_trials:
        return f"{len(states)} of {num_trials} trial(s) started"
    if segment == segments(layout)[-1] and layout.has(INTERRUPTED_FILE):
        return "stopped by Ctrl-C"
    return None


def extensions(manifest: dict) -> list[dict]:
    return list(manifest.get(EXTENSIONS_KEY, []))


def num_trials(manifest: dict, segment_index: int) -> int:
    """The trials segment `segment_index` was to run."""
    if segment_index == 0:
        return int(manifest["num_trials"])
    return int(extensions(manifest)[segment_index - 1]["num_trials"])
