"""Free the placement group of a Train run whose trial Tune stopped.

When Tune stops a trial (ASHA, `max_t`) it kills the trial actor; the Train
controller and its workers die with it, but their placement group stays
reserved: Ray frees a group made by an actor only once that actor *and* its
job are dead (ray-project/ray#65881), and Train's own cleaner
(`PlacementGroupCleaner`) asks the dashboard's State API whether the controller
lives, which a cluster without the dashboard (our tests, `include_dashboard=False`)
cannot answer. On a small machine the next trials then wait for workers forever.

The group may only be removed once its controller is dead: removing it under
a live controller makes the controller restart its workers in a new group,
which then leaks. Rank 0's reports carry the group's id and the controller
reports its own actor id (`SweepReportCallback`); the `WorkerGroupReaper`
callback removes the group as soon as that controller is gone.

The leak this used to have (seen in the per-trial-CV ASHA test, 1 run in 1 on 2026-11-26,
the leaked group reported by no trial): when Tune kills a stopped trial's actor, Ray ends the
Train controller it owns, and that controller's own workers, first. While the controller is
being torn down its control loop still runs: it sees its workers dead and, with
`max_failures` left, starts a new worker group in a *new* placement group, never reported;
once the controller is gone that group stays reserved until the driver exits (Ray frees it
only with its job, ray-project/ray#65881). `SweepReportCallback` ends the controller instead
(`ray.actor.exit_actor`) when its workers fail or a report cannot reach Tune after its trial
is gone, so the only group left is the one rank 0 reported, which the reaper frees.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Optional

from ray.tune.integration.ray_train import TuneReportCallback

log = logging.getLogger(__name__)

CONTROLLER_KEY = "_controller"  # result key: the Train controller's actor id (hex)
# If the controller's state cannot be read, remove the group after this long anyway.
FALLBACK_S = 60.0
# How long a controller whose workers failed watches whether its trial is gone before restarting them
TRIAL_GONE_WAIT_S = 2.0


class SweepReportCallback(TuneReportCallback):
    """Tune's report callback, plus the id of the controller it runs in."""

    def after_report(self, run_context, metrics, checkpoint):
        import ray

        if metrics:
            metrics = [{**metrics[0], CONTROLLER_KEY: ray.get_runtime_context().get_actor_id()}, *metrics[1:]]
        try:
            super().after_report(run_context, metrics, checkpoint)
        except ray.exceptions.ActorDiedError:
            # Tune's report queue died with the trial actor that owns it: Tune has ended the
            # trial. Raised, this error is a controller failure that Train answers by starting a
            # new worker group in a new placement group nobody knows of (the leak).
            _end_controller()

    def after_exception(self, run_context, worker_exceptions) -> None:
        """Workers failed: when their trial is gone, end the controller rather than let Train
        restart them in a new placement group (see the module's docstring). Ray ends the
        trial's queue, the controller and its workers in no set order, so a trial that still
        looks alive is watched for `TRIAL_GONE_WAIT_S` (a real worker failure restarts that much later)."""
        deadline = time.monotonic() + TRIAL_GONE_WAIT_S
        while not self._trial_gone():
            if time.monotonic() > deadline:
                return
            time.sleep(0.2)
        _end_controller()

    def _trial_gone(self) -> bool:
        import ray

        try:
            # Tune's report queue, which TuneReportCallback made in the trial actor (which owns
            # it): the one handle on the trial's life a controller has (no public accessor)
            self._training_actor_item_queue.qsize()
        except ray.exceptions.ActorDiedError:
            return True
        return False


def _end_controller() -> None:
    """End the Train controller this runs in, now: `exit_actor` raises `AsyncioActorExit`, which
    Train's control loop lets through, so no new worker group is started."""
    import ray

    log.info("the trial is gone: ending its Train controller without restarting its workers")
    ray.actor.exit_actor()


def _actor_dead(actor_hex: Optional[str]) -> Optional[bool]:
    """Whether the actor is dead; None when Ray cannot tell."""
    if not actor_hex:
        return None
    try:
        # GCS's actor table, read through Ray's private state module: the public State API
        # (`ray.util.state.get_actor`) needs the dashboard, and no public call takes an actor
        # id without it. Needed only because a group outlives its creator actor while the job
        # lives (ray-project/ray#65881, open); when that lands, Ray frees the group itself.
        from ray._private.state import actors

        return actors(actor_id=actor_hex).get("State") == "DEAD"
    except Exception as e:
        log.debug("actor %s: %s", actor_hex, e)
        return None


def _pg_live(pg_hex: str) -> bool:
    import ray.util

    return ray.util.placement_group_table().get(pg_hex, {}).get("state") not in (None, "REMOVED")


def remove(pg_hex: str) -> None:
    import ray
    from ray.util.placement_group import PlacementGroup, remove_placement_group

    try:
        remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(pg_hex))))
    except Exception as e:  # removed in the meantime: nothing to free
        log.debug("placement group %s: %s", pg_hex, e)


@dataclass
class PendingGroups:
    """Placement groups of ended trials, freed once their controllers are dead."""

    pending: dict[str, tuple[Optional[str], float]] = field(default_factory=dict)  # pg -> (controller, since)

    def add(self, pg_hex: Optional[str], controller_hex: Optional[str]) -> None:
        if pg_hex:
            self.pending.setdefault(pg_hex, (controller_hex, time.monotonic()))

    def sweep(self) -> None:
        for pg_hex, (controller, since) in list(self.pending.items()):
            if not _pg_live(pg_hex):
                del self.pending[pg_hex]
                continue
            dead = _actor_dead(controller)
            if dead or (dead is None and time.monotonic() - since > FALLBACK_S):
                remove(pg_hex)
                del self.pending[pg_hex]

    def drain(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            self.sweep()
            if self.pending:
                time.sleep(0.5)
