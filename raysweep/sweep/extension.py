"""Grow a sweep that has ended (finished, stopped, killed) by more trials: `raysweep extend`.

    raysweep extend quickstart --num-samples 4 --set optimizer.lr='{loguniform: [1e-3, 1.0]}'

Why a new Tune experiment. Tune continues an experiment only as it was: `Tuner.restore` takes
no new `num_samples` (the trial count lives in the pickled search generator; only a private
`_resume_config` is open to change) and runs no new trials once the searcher said it was done
(ray-project/ray#18847, closed without the feature; the Tune FAQ says to start a new
experiment). So an extension is a new Tune experiment, a *segment*, in the sweep's own folder
(`<sweep>/extension-N/`, `raysweep.sweep.segments`), whose trials keep their checkpoints in
the sweep's `train/` beside the earlier ones. Nothing of an earlier segment is run again.

What carries over:
- The searcher: a new Optuna study holding every ended trial of the previous segment's study
  (itself holding the ones before) as frozen trials, with their values, per-epoch
  (intermediate) values and states: COMPLETE, PRUNED and FAIL alike
  (`SweepSearcher.seed_from`). They are stored under the new space's distributions, so a wider
  `optimizer.lr` or a new loss in a `choice` applies to the new trials while the old ones
  inform the sampler; a trial with a value the new space no longer holds cannot be stored in
  the study (Optuna checks each value against its distribution) and is left out of it, named
  with the reason in what `extend` prints, the manifest and MLflow. The sampler's seed is
  offset by the extension's number, so it does not draw the first segment's points again.
- ASHA's rungs: the scheduler replays every segment's trials' results at its first trial, as on
  resume (`raysweep.search.schedulers`), so the new trials are judged against the old scores.
- MLflow: the same parent run, found by its tags; the new trial runs beside the old ones; the
  parent records each extension (tag `raysweep.extension.N`, artifact `extensions.json`).
- `raysweep report`, the leaderboard and the parent's plots read every segment.

An extension of a sweep whose last segment is not over (killed, Ctrl-C) first finishes that
segment as `raysweep resume` would (its unfinished trials continue from their checkpoints), so
the earlier trials are whole when the new ones start. A sweep whose driver is running is
refused (`raysweep.sweep.driver`). `raysweep resume` continues the latest segment.
"""

from __future__ import annotations

import json
import time
from typing import Optional

from raysweep.config.load import Sweep
from raysweep.errors import UserError
from raysweep.sweep.experiment import SweepOutcome, fit_tuner, planned, resumed, tracking_for, make_tuner, show_where, searcher_for, with_recorded_store
from raysweep.sweep.layout import DEFAULT_STORAGE, SweepLayout
from raysweep.sweep.segments import EXTENSIONS_KEY, extension_name, extensions, num_trials, segments, state_files, unfinished

MAX_LISTED = 5  # trials named in the printed line on what was left out (the manifest has all)


def extended_sweep(layout: SweepLayout, num_samples: int, overrides: list[str]) -> Sweep:
    """The latest segment's sweep file with `overrides` and `num_samples` (the command checks it
    as `run` does: `raysweep.commands.check_sweep`)."""
    if num_samples < 1:
        raise UserError(f"must be at least 1, got {num_samples}", source="--num-samples")
    return segments(layout)[-1].load_sweep((*overrides, f"search.num_samples={num_samples}"))


def space_changes(before: Sweep, after: Sweep) -> dict[str, str]:
    """Each searched dimension the extension changed, added or dropped: 'before -> after'."""
    def shown(sweep: Sweep, path: str) -> str:
        dom = sweep.space.get(path)
        return json.dumps(dom.to_yaml()) if dom is not None else "not searched"

    paths = dict.fromkeys([*before.space, *after.space])
    return {p: f"{shown(before, p)} -> {shown(after, p)}" for p in paths if before.space.get(p) != after.space.get(p)}


def _searcher_state(segment: SweepLayout) -> Optional[dict]:
    """The segment's searcher as Tune stored it last (one file per driver session; the newest
    name is the searcher as the segment ended)."""
    import pickle

    names = state_files(segment, "searcher-state-", ".pkl")
    return pickle.loads(segment.read_bytes(names[-1])) if names else None


def _finish(layout: SweepLayout, segment: SweepLayout, total: int, why: str, *, storage: str, address, autoscaling: bool) -> None:
    manifest = layout.manifest()
    sweep = with_recorded_store(segment.load_sweep(), manifest)
    print(f"sweep {layout.sweep_id}: finishing its last part first ({why}), as raysweep resume would", flush=True)
    the_plan = planned(sweep, address, autoscaling)
    resumed(sweep, layout, segment, the_plan, tracking_for(sweep, layout, manifest), storage, retry_errored=False, total=total)


def extend_sweep(layout: SweepLayout, sweep: Sweep, *, storage: str = DEFAULT_STORAGE, address: Optional[str] = None, autoscaling: bool = False, overrides: tuple[str, ...] = ()) -> SweepOutcome:
    """Run `sweep` (from `extended_sweep`) as the next segment of the sweep at `layout`."""
    parts = segments(layout)
    previous = parts[-1]
    why = unfinished(layout, previous, num_trials(layout.manifest(), len(parts) - 1))
    if why:
        _finish(layout, previous, num_trials(layout.manifest(), len(parts) - 1), why, storage=storage, address=address, autoscaling=autoscaling)
    manifest = layout.manifest()
    sweep = with_recorded_store(sweep, manifest)
    the_plan = planned(sweep, address, autoscaling)
    number = len(parts)
    segment = SweepLayout(layout.uri, extension_name(number))
    searcher, spec, total = searcher_for(sweep, layout.train_storage, seed_offset=number)
    earlier = _searcher_state(previous)
    left_out = searcher.seed_from(earlier) if earlier is not None else [f"{previous.sweep_id}: no searcher state was stored"]
    record = {
        "segment": segment.sweep_id, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "num_samples": sweep.config.search.num_samples,
        "num_trials": total, "overrides": list(overrides), "changed": space_changes(previous.load_sweep(), sweep),
        "carried": len(searcher.study.trials), "left_out": left_out,
    }
    segment.save_sweep(sweep)
    manifest[EXTENSIONS_KEY] = [*extensions(manifest), record]
    layout.save_manifest(manifest)  # from here on the segment is the sweep's latest
    tracking = tracking_for(sweep, layout, manifest)
    if tracking is not None:
        from raysweep.tracking.sweep import record_extensions

        record_extensions(tracking, manifest[EXTENSIONS_KEY])
    _announce(layout, record, the_plan)
    show_where(layout, tracking)
    tuner = make_tuner(sweep, layout, the_plan, searcher, spec, total, tracking, register=None, segment=segment)
    return SweepOutcome(layout, the_plan, fit_tuner(tuner, layout, storage))


def _announce(layout: SweepLayout, record: dict, the_plan) -> None:
    print(f"sweep {layout.sweep_id}: {record['num_trials']} more trial(s) ({record['segment']}), {the_plan.describe()}", flush=True)
    print(f"  the searcher starts from {record['carried']} earlier trial(s)", flush=True)
    for path, change in record["changed"].items():
        print(f"  {path}: {change}", flush=True)
    if record["left_out"]:
        named = "; ".join(record["left_out"][:MAX_LISTED]) + ("; ..." if len(record["left_out"]) > MAX_LISTED else "")
        print(f"  left out of the searcher's study (still in the report and MLflow): {named}", flush=True)
