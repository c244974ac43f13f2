"""System metrics of a trial's MLflow run, sampled where the trial trains.

MLflow's `SystemMetricsMonitor` samples CPU, memory, disk and network (and, where
`nvidia-ml-py` finds an NVIDIA GPU, each GPU's utilization, memory and power) on a thread
and logs them to a run as `system/cpu_utilization_percentage`,
`system/gpu_0_utilization_percentage`, ... (step = sample number), which the MLflow UI
shows on the run's "System metrics" tab: whether a trial starved its GPU is seen there.
`mlflow.start_run(log_system_metrics=True)` would start the same monitor, but through the
fluent API's global active run, whose `end_run` would end the trial's run: in a sweep the
driver ends it as Tune judged the trial. So the monitor is started on the trial's run by id.

It runs on rank 0's process (the `MlflowTrialLogger` listener, wherever the trial trains),
so the GPU figures are of that worker's node (NVML numbers every GPU of the node,
whatever `CUDA_VISIBLE_DEVICES` says). A resumed trial continues its series' steps.
"""

from __future__ import annotations

import logging
from typing import Optional

log = logging.getLogger("raysweep.tracking")


class SystemMetrics:
    """One run's monitor: `start()`, and `stop()` when the trial ends."""

    def __init__(self, uri: str, run_id: str, interval_s: float):
        self.uri = uri
        self.run_id = run_id
        self.interval_s = interval_s
        self._monitor = None

    def start(self) -> None:
        # psutil, which MLflow's CPU monitor imports, is not in requirements.lock; importing ray
        # puts Ray's vendored copy (ray/thirdparty_files) on sys.path, as in every Ray process
        import ray  # noqa: F401

        try:
            from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
        except ImportError as e:
            log.warning("system metrics are not logged: %s", e)
            return
        self._monitor = SystemMetricsMonitor(
            self.run_id, sampling_interval=self.interval_s, samples_before_logging=1, resume_logging=True, tracking_uri=self.uri
        )
        self._monitor.start()

    def stop(self) -> None:
        """Stop sampling and log one last sample: MLflow's monitor logs a sample only once its
        interval has passed, so a trial shorter than the interval would otherwise have none."""
        monitor, self._monitor = self._monitor, None
        if monitor is None:
            return
        monitor.finish()  # ends its thread and flushes what it sampled
        try:
            monitor.collect_metrics()
            monitor.publish_metrics(monitor.aggregate_metrics())
            monitor.mlflow_logger.flush()
        except Exception as e:  # the store went away meanwhile: the series simply ends earlier
            log.warning("last system metrics sample of run %s not logged: %s", self.run_id, e)


def maybe_monitor(cfg, uri: str, run_id: Optional[str]) -> Optional[SystemMetrics]:
    """The monitor of `run_id` when the config asks for system metrics."""
    tracking = cfg.tracking
    wanted = tracking.system_metrics
    if wanted is None:
        # by default where the trial has a GPU, whose starving they show; MLflow's comparison of
        # runs lists `system/...` before `val/...` in a short box and plots the first of them
        wanted = cfg.resources.gpus_per_worker > 0
    if not (wanted and run_id):
        return None
    return SystemMetrics(uri, run_id, tracking.system_metrics_interval_s)
