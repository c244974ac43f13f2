"""MLflow tracking of sweeps: one parent run per sweep, one child run per trial
(one grandchild per fold under per-trial cross-validation), each exactly once.

- `store`        which store, what may be logged (secrets redacted)
- `runs`         find-or-create runs by their tags
- `resilient`    MLflow calls that retry in the background and never stop training
- `trial_logger` per-epoch metrics from rank 0
- `trial_runs`   the sweep's actor that opens its trials' runs (trials import no MLflow)
- `artifacts`    checkpoints, confusion matrices, reports, curves, search plots
- `model`        the best model, ready to load and call (`trainables.deploy`)
- `sweep`        the parent run and the driver-side Tune callback
- `train_run`    the run of `raysweep train`: a trial's run with no sweep above it
"""
