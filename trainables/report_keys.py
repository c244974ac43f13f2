"""Keys a trial adds to the results it reports to Tune, beside its metrics. Imports
nothing, so the sweep's driver reads them without importing torch."""

# the worker group's placement group id (hex), reported by rank 0 so the sweep driver can
# free it when Tune stops the trial (raysweep.sweep.callbacks.WorkerGroupReaper)
PG_KEY = "_pg"
NODE_KEY = "_node"  # the Ray node rank 0 runs on (where a trial's workers were placed)
CHECKPOINT_PATH_KEY = "checkpoint_path"  # the key Ray's own Train-to-Tune bridge (TuneReportCallback) uses
# the Train controller's actor id (hex), so the driver frees a stopped trial's group once it is dead
CONTROLLER_KEY = "_controller"
