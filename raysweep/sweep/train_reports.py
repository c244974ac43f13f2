"""How a trial's Ray Train run hands its reports to Tune.

Ray's own bridge, `ray.tune.integration.ray_train.TuneReportCallback`, has the Train controller
put each report into a one-slot queue that the *main* thread of the Tune trial actor drains,
re-reporting each item into the trial session's one-slot result queue. When the Train run ends
before Tune asks for its last result (a busy driver: Tune's own callbacks, MLflow), the trial's
function returns, Tune's wrapper reports its end-of-function marker into that result queue from
the trial's thread, and the main thread's re-report of the last result then waits forever on the
full queue, which only the main thread itself empties: the trial never ends and the sweep hangs
with the last epoch unreported (Ray 2.60; seen in the placement-group stress test, 1 run in 9;
reproduced with bare Ray, a one-worker `DataParallelTrainer` under a Tune callback that sleeps
after the second result: `tests/integration/test_train_reports.py`).

Here the Train run is fitted beside the trial's own thread, which takes the reports from the
controller and hands each to Tune with `ray.tune.report`: the one producer Tune's session
expects, so the function returns only once its last result was taken.

The queue is made in the trial actor, which owns it, so it dies with the trial: a controller
whose report cannot be delivered, or whose workers failed after its trial was gone, ends itself
instead of starting a new worker group in a placement group nobody reported (the leak;
`raysweep.sweep.placement`).
"""

from __future__ import annotations

import logging
import threading
import time

from ray.train.v2.api.callback import UserCallback

from trainables.report_keys import CHECKPOINT_PATH_KEY, CONTROLLER_KEY

log = logging.getLogger(__name__)

# How often the trial's thread looks whether its Train run has ended while no report comes
POLL_S = 0.5
# How long a controller whose workers failed watches whether its trial is gone before restarting them
TRIAL_GONE_WAIT_S = 2.0


class TrainReports(UserCallback):
    """Rank 0's reports of a Train run, with the checkpoint's path and the controller's actor id,
    into a one-slot queue its trial's thread reads (`fit_reporting`)."""

    def __init__(self):
        from ray.util.queue import Queue

        # one slot: the controller waits while Tune judges the last result, as with Ray's bridge
        self.queue = Queue(1, actor_options={"num_cpus": 0})

    def after_report(self, run_context, metrics, checkpoint):
        import ray

        item = {**metrics[0], CONTROLLER_KEY: ray.get_runtime_context().get_actor_id()}
        if checkpoint:
            item[CHECKPOINT_PATH_KEY] = checkpoint.path
        try:
            self.queue.put(item)
        except ray.exceptions.ActorDiedError:
            # the queue died with the trial actor that owns it: Tune has ended the trial. Raised,
            # this error is a controller failure that Train answers by starting a new worker
            # group in a new placement group nobody knows of (the leak).
            _end_controller()

    def after_exception(self, run_context, worker_exceptions) -> None:
        """Workers failed: when their trial is gone, end the controller rather than let Train
        restart them in a new placement group. Ray ends the trial's queue, the controller and
        its workers in no set order, so a trial that still looks alive is watched for
        `TRIAL_GONE_WAIT_S` (a real worker failure restarts that much later)."""
        deadline = time.monotonic() + TRIAL_GONE_WAIT_S
        while not self._trial_gone():
            if time.monotonic() > deadline:
                return
            time.sleep(0.2)
        _end_controller()

    def _trial_gone(self) -> bool:
        import ray

        try:
            self.queue.qsize()
        except ray.exceptions.ActorDiedError:
            return True
        return False


def fit_reporting(trainer, reports: TrainReports):
    """`trainer.fit()`, with each report of its run handed to Tune from this (the trial's) thread
    as it comes; returns fit's result once every report was taken, or raises fit's error."""
    from ray import tune
    from ray.util.queue import Empty

    outcome: dict = {}

    def fit() -> None:
        try:
            outcome["result"] = trainer.fit()
        except BaseException as e:  # handed to the trial's thread, which raises it to Tune
            outcome["error"] = e

    run = threading.Thread(target=fit, name="raysweep-train-run", daemon=True)
    run.start()
    while True:
        ended = not run.is_alive()  # before looking: a run ends only after its last put returned
        try:
            item = reports.queue.get(timeout=POLL_S)
        except Empty:
            if ended:
                break
            continue
        tune.report(item)  # waits until Tune asks for the next result
    run.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _end_controller() -> None:
    """End the Train controller this runs in, now: `exit_actor` raises `AsyncioActorExit`, which
    Train's control loop lets through, so no new worker group is started."""
    import ray

    log.info("the trial is gone: ending its Train controller without restarting its workers")
    ray.actor.exit_actor()
