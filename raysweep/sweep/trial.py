"""The Tune function trainable: one Tune trial = one Ray Train run.

Ray Train V2 runs under Tune this way: the Tune function builds a
`TorchTrainer` whose `RunConfig` carries `train_reports.TrainReports`, which hands
rank 0's per-epoch metrics (with the checkpoint path and the controller's id, so a
stopped trial's workers can be freed) to the trial's thread, which reports them to Tune.
The Train run is named after the Tune trial id inside the sweep's storage, so when a stopped
sweep is resumed and Tune runs the function again, Train finds the trial's
last checkpoint and continues from the next epoch.

With `resources.inline: true` (one worker) there is no Train run: the trial actor
trains in its own process (`trainables.tune_session`), keeping its checkpoints in the
same place, and asks Tune for the worker's resources itself.
"""

from __future__ import annotations

import re
from typing import Any

MAX_DIRNAME = 100  # a trial's folder name, well under any file system's 255


class TrialDiverged(RuntimeError):
    """The trial's loss became NaN or infinite; Tune marks the trial ERROR with this reason."""


# How long Tune waits for a finished inline trial's thread to end before handing its actor the
# next trial (`reuse_actors`); Tune's default, 2 s, is shorter than a trial's end can take on a
# busy node (its listeners close), and a reset that times out fails the next trial, not the last.
REUSE_WAIT_S = "30"


def run_trial(params: dict[str, Any], *, sweep, train_storage: str, tracking=None, opener=None, fold_groups: int = 1, strays: tuple[str, ...] = ()) -> None:
    """`strays`: trials a killed driver started after its last snapshot (`raysweep.sweep.strays`);
    one with this trial's configuration is continued, not started over. `opener`: the sweep's
    actor that opens its trials' MLflow runs (`raysweep.tracking.trial_runs`)."""
    import os

    from ray import tune

    # read by this actor's `FunctionTrainable.reset_config` when Tune reuses it
    os.environ.setdefault("TUNE_FUNCTION_THREAD_TIMEOUT_S", REUSE_WAIT_S)

    trial_id = tune.get_context().get_trial_id()
    cfg = sweep.resolve(params)
    adopted = None
    if strays:
        from raysweep.sweep.strays import adopt
        from raysweep.tracking.trial_logger import run_name

        adopted = adopt(cfg, train_storage, trial_id, strays, opener, run_name(trial_id, params))
    listeners = []
    if tracking is not None:
        from raysweep.tracking.trial_logger import MlflowTrialLogger, run_name

        # epochs are logged by the sweep's driver as Tune judges them (raysweep.tracking.sweep)
        listeners.append(MlflowTrialLogger(tracking, trial_id, run_name(trial_id, params), log_epochs=False, opener=opener))
    if cfg.resources.inline:
        from raysweep.storage import join
        from trainables.tune_session import run_inline

        final = run_inline(cfg, join(train_storage, trial_id), listeners)
    else:
        from raysweep.sweep.checkpoints import recover
        from raysweep.sweep.train_reports import TrainReports, fit_reporting
        from trainables.launch import build_trainer

        # only when Train's own record is damaged or lags, or the trial continues a stray's
        resume_from = _checkpoint(adopted) if adopted else recover(train_storage, trial_id)
        reports = TrainReports()
        trainer = build_trainer(
            cfg, name=trial_id, storage_path=train_storage, callbacks=[reports], listeners=listeners,
            resume_from=resume_from,
            fold_groups=fold_groups,
        )
        final = fit_reporting(trainer, reports).metrics or {}  # the latest checkpoint's metrics (every report of rank 0 has one)
    if final.get("diverged"):
        raise TrialDiverged(final.get("error", "the loss became non-finite"))


def _checkpoint(uri: str):
    from ray.train import Checkpoint

    from raysweep.storage import filesystem

    fs, path = filesystem(uri)
    return Checkpoint(path, filesystem=fs)


def trial_resources(cfg) -> dict[str, float]:
    """What Tune reserves for the trial actor: nothing but a place on the head node
    (it waits on its Train run), or, inline, the one worker's resources."""
    from raysweep.sweep.plan import TRIAL_RESOURCES

    if cfg.resources.inline:
        from trainables.launch import worker_resources

        return worker_resources(cfg)
    return TRIAL_RESOURCES


def make_trainable(sweep, train_storage: str, tracking=None, fold_groups: int = 1, strays: tuple[str, ...] = ()):
    """The trial function with the sweep bound and its actor's resources set; `fold_groups`:
    the per-trial CV folds its trials train at once (`raysweep.sweep.plan.fold_groups`);
    `strays`: a resumed sweep's trials that Tune's snapshot missed (`raysweep.sweep.strays`)."""
    from ray import tune

    opener = None
    if tracking is not None:
        from raysweep.tracking.trial_runs import start_opener

        opener = start_opener(tracking)
    bound = tune.with_parameters(run_trial, sweep=sweep, train_storage=train_storage, tracking=tracking, opener=opener, fold_groups=fold_groups, strays=strays)
    return tune.with_resources(bound, trial_resources(sweep.config))


def trial_dirname(trial) -> str:
    """The folder of a Tune trial in the sweep's directory: `<trial id>_lr=0.003162,batch_size=16`.

    Each searched value is shown whole (floats as the progress table shows them) under the
    shortest part of its key that tells it apart; a value that would take the name past
    `MAX_DIRNAME` is left out rather than cut (Tune's own names cut `batch_size=16` to `=1`).
    The trial id comes first and makes the name unique; a resumed trial keeps its folder,
    since Tune stores the name it was given (`relative_logdir`)."""
    from raysweep.tables import short_names

    params = _flat(trial.config)
    short = short_names(list(params))
    name, sep = trial.trial_id, "_"
    for key, value in params.items():
        item = f"{sep}{short[key]}={_safe(value)}"
        if len(name) + len(item) <= MAX_DIRNAME:
            name, sep = name + item, ","
    return name


def _flat(config: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        out.update(_flat(value, path + ".") if isinstance(value, dict) else {path: value})
    return out


def _safe(value: Any) -> str:
    """The value as a file name may hold it: letters, digits and . _ + - (`[4, 8]` is `4-8`)."""
    from raysweep.tables import fmt

    text = fmt(value) if isinstance(value, float) else str(value)
    return "-".join(p for p in re.split(r"[^A-Za-z0-9._+-]+", text) if p) or "_"
