"""The Tune function trainable: one Tune trial = one Ray Train run.

Ray Train V2 runs under Tune this way: the Tune function builds a
`TorchTrainer` whose `RunConfig` carries `TuneReportCallback`, which forwards
rank 0's per-epoch metrics (and the checkpoint path) to Tune; raysweep's
subclass adds the controller's id, so a stopped trial's workers can be freed.
The Train run is named after the Tune trial id inside the sweep's storage, so when a stopped
sweep is resumed and Tune runs the function again, Train finds the trial's
last checkpoint and continues from the next epoch.
"""

from __future__ import annotations

from typing import Any


class TrialDiverged(RuntimeError):
    """The trial's loss became NaN or infinite; Tune marks the trial ERROR with this reason."""


def run_trial(params: dict[str, Any], *, sweep, train_storage: str, tracking=None) -> None:
    from ray import tune

    from raysweep.sweep.placement import SweepReportCallback
    from trainables.launch import build_trainer

    trial_id = tune.get_context().get_trial_id()
    cfg = sweep.resolve(params)
    listeners = []
    if tracking is not None:
        from raysweep.tracking.trial_logger import MlflowTrialLogger, run_name

        listeners.append(MlflowTrialLogger(tracking, trial_id, run_name(trial_id, params)))
    trainer = build_trainer(cfg, name=trial_id, storage_path=train_storage, callbacks=[SweepReportCallback()], listeners=listeners)
    result = trainer.fit()
    final = result.metrics or {}  # the latest checkpoint's metrics (every report of rank 0 has one)
    if final.get("diverged"):
        raise TrialDiverged(final.get("error", "the loss became non-finite"))


def make_trainable(sweep, train_storage: str, tracking=None):
    """The trial function with the sweep bound, its actor pinned to the head node."""
    from ray import tune

    from raysweep.sweep.plan import TRIAL_RESOURCES

    bound = tune.with_parameters(run_trial, sweep=sweep, train_storage=train_storage, tracking=tracking)
    return tune.with_resources(bound, TRIAL_RESOURCES)
