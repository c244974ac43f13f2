"""A sweep's segments (the first Tune experiment, then one per `raysweep extend`) read as one:
the report, the scheduler's replayed histories and `unfinished` (no Ray)."""

import json

from raysweep.config import load_sweep
from raysweep.sweep.layout import INTERRUPTED_FILE, SweepLayout, manifest_for
from raysweep.sweep.results import read_trials
from raysweep.sweep.segments import EXTENSIONS_KEY, segments, unfinished
from tests.conftest import tiny_config

METRIC = "val/macro_f1"


def write_segment(segment: SweepLayout, trials: dict[str, tuple[str, list[float], dict]]) -> None:
    """Tune's snapshot and each trial's result.json, in the segment's own directory."""
    data = []
    for trial, (status, f1s, config) in trials.items():
        lines = [{"epoch": e + 1, METRIC: f} for e, f in enumerate(f1s)]
        segment.write_text(f"{trial}_dir/result.json", "".join(json.dumps(x) + "\n" for x in lines))
        state = {"trial_id": trial, "status": status, "config": config, "relative_logdir": f"{trial}_dir"}
        data.append([json.dumps(state), json.dumps({"last_result": lines[-1] if lines else {}})])
    segment.write_text("experiment_state-2026-01-01_00-00-00.json", json.dumps({"trial_data": data}))


def test_the_report_reads_every_segment_and_the_dimensions_an_extension_added(tmp_path, sweep_file):
    first = load_sweep(sweep_file(tiny_config(optimizer={"lr": {"loguniform": [0.01, 0.1]}}), name="a.yaml"))
    wider = load_sweep(sweep_file(tiny_config(optimizer={"lr": {"loguniform": [0.001, 1.0]}, "weight_decay": {"choice": [0.0, 0.01]}}), name="b.yaml"))
    layout = SweepLayout(str(tmp_path), "s")
    manifest = manifest_for(first, num_trials=2, num_configs=2, replicas=1)
    layout.save(first, manifest)
    write_segment(layout, {"a1": ("TERMINATED", [0.5, 0.6], {"optimizer.lr": 0.02}), "a2": ("TERMINATED", [0.3, 0.4], {"optimizer.lr": 0.05})})
    assert segments(layout) == [layout] and unfinished(layout, layout, 2) is None

    extension = SweepLayout(layout.uri, "extension-1")
    extension.save_sweep(wider)
    layout.save_manifest({**manifest, EXTENSIONS_KEY: [{"segment": "extension-1", "num_trials": 2}]})
    write_segment(extension, {"b1": ("TERMINATED", [0.7, 0.9], {"optimizer.lr": 0.5, "optimizer.weight_decay": 0.01}), "b2": ("RUNNING", [0.1], {"optimizer.lr": 0.002, "optimizer.weight_decay": 0.0})})
    assert segments(layout) == [layout, extension]

    rows, metric, _ = read_trials(layout)
    assert [r.trial_id for r in rows] == ["b1", "a1", "a2", "b2"] and metric == METRIC
    assert [r.metric for r in rows] == [0.9, 0.6, 0.4, 0.1]
    assert rows[0].params == {"optimizer.lr": 0.5, "optimizer.weight_decay": 0.01} and rows[1].params == {"optimizer.lr": 0.02}
    # every segment's trials with their whole histories (early stopping in an extension judges the
    # new trials against the earlier ones through the searcher's seeded study, SweepSearcher.seed_from)
    assert {r.trial_id: r.epochs_done for r in rows} == {"a1": 2, "a2": 2, "b1": 2, "b2": 1}
    assert unfinished(layout, extension, 2) == "1 trial(s) not ended"
    assert unfinished(layout, layout, 3) == "2 of 3 trial(s) started"
    layout.write_text(INTERRUPTED_FILE, "{}")
    assert unfinished(layout, layout, 2) is None and unfinished(layout, extension, 2) is not None  # Ctrl-C ended the latest
