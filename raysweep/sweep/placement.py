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
reports its own actor id (`raysweep.sweep.train_reports`); the `WorkerGroupReaper`
callback removes the group as soon as that controller is gone.

The leak this used to have (seen in the per-trial-CV ASHA test, 1 run in 1 on 2026-11-26,
the leaked group reported by no trial): when Tune kills a stopped trial's actor, Ray ends the
Train controller it owns, and that controller's own workers, first. While the controller is
being torn down its control loop still runs: it sees its workers dead and, with
`max_failures` left, starts a new worker group in a *new* placement group, never reported;
once the controller is gone that group stays reserved until the driver exits (Ray frees it
only with its job, ray-project/ray#65881). `train_reports.TrainReports` ends the controller instead
(`ray.actor.exit_actor`) when its workers fail or a report cannot reach Tune after its trial
is gone, so the only group left is the one rank 0 reported, which the reaper frees.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Optional

log = logging.getLogger(__name__)

# If the controller's state cannot be read, remove the group after this long anyway.
FALLBACK_S = 60.0


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
