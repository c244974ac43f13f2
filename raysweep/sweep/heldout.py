"""A sweep's last step where its data ships a test split: the best trial, chosen on
validation, evaluated once on the held-out test split.

Selection never sees the test split: the best trial and its checkpoint are the ones
the leaderboard ranks first by the validation objective (`read_trials`), and only
then is that checkpoint read (through `trainables.deploy`, as a deployed model is)
and run over the test samples, in a Ray task with one trial worker's resources. The
record goes to `test_result.json` in the sweep's directory, which the leaderboard,
`raysweep report` and the MLflow parent run read (`raysweep.sweep.results` owns the file).
"""

from __future__ import annotations

import logging
from typing import Optional

from ray.tune import Callback

from raysweep.sweep.layout import SweepLayout
from raysweep.sweep.results import read_trials, write_test_result

log = logging.getLogger(__name__)


def _evaluate_remote(checkpoint_uri: str, data: dict) -> dict:
    from raysweep.config.sections.data import DataConfig
    from raysweep.sweep.checkpoints import download
    from trainables.heldout import evaluate

    return evaluate(download(checkpoint_uri), DataConfig.model_validate(data))


def evaluate_best(layout: SweepLayout) -> Optional[dict]:
    """Evaluate the best trial's selected checkpoint on the test split and record it; None when
    the sweep's data has no test split or no trial has a scored checkpoint."""
    import ray

    from trainables.heldout import describe_test_split

    cfg = layout.load_sweep().config
    if not cfg.data.has_test_split:
        return None
    rows, metric, _ = read_trials(layout)
    best = next((r for r in rows if r.metric is not None and r.checkpoint), None)
    if best is None:
        return None
    resources = cfg.resources
    task = ray.remote(num_cpus=resources.cpus_per_worker, num_gpus=resources.gpus_per_worker, resources=resources.custom or None, max_retries=0)
    result = ray.get(task(_evaluate_remote).remote(best.checkpoint, cfg.data.model_dump(mode="json")))
    record = {
        "trial_id": best.trial_id, "checkpoint": best.checkpoint, "split": describe_test_split(cfg.data),
        "selected_on": metric, "selected_value": best.metric, "selected_epoch": best.best_epoch, **result,
    }
    write_test_result(layout, record)
    return record


class HeldoutEvaluation(Callback):
    """At the end of a sweep that finished (not one stopped by Ctrl-C), evaluate the best trial on
    the test split. Listed before the MLflow callback, whose end reads the record."""

    def __init__(self, layout: SweepLayout):
        self.layout = layout

    def on_experiment_end(self, trials: list, **info) -> None:
        from raysweep.sweep.interrupt import interrupted

        if interrupted():
            return
        try:
            record = evaluate_best(self.layout)
        except Exception as e:  # the sweep's results stand; the record says why there is no test figure
            log.exception("evaluating the best trial on the test split failed")
            write_test_result(self.layout, {"error": f"{type(e).__name__}: {e}"[:2000]})
            return
        if record is not None:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in record["metrics"].items() if k in ("accuracy", "macro_f1", "loss"))
            print(f"test split ({record['split']}, {record['samples']} samples), best trial {record['trial_id']}: {shown}", flush=True)
