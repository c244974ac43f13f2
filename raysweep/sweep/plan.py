"""How many trials run at once, planned from the cluster's resources.

A trial is a Tune function actor plus a Ray Train worker group of W workers x
(CPUs, GPUs, custom resources per worker). The trial actor only waits on its
Train run and takes no CPU: it is pinned to the head node (`TRIAL_RESOURCES`),
beside the driver, and Train's controller follows it there. So losing a worker
node loses only Train workers, which Train restarts from the last checkpoint on
the nodes left. Tune starts a trial only when the
whole trial fits, and starts no more trials than fit at once, so no started
trial sits waiting for workers that are held by others. A trial that could
never fit is refused before the sweep starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from raysweep.config.schema import SweepConfig
from raysweep.errors import ClusterError

# The Tune trial actor: no CPU (it waits on its Train run), on the head node (Ray refuses a
# trainable that asks for nothing at all; a sliver of the head's marker resource is enough).
TRIAL_RESOURCES = {"CPU": 0, "node:__internal_head__": 0.001}
_EPS = 1e-9


@dataclass(frozen=True)
class Plan:
    per_trial: dict[str, float]
    concurrency: int

    def describe(self) -> str:
        need = ", ".join(f"{v:g} {k}" for k, v in self.per_trial.items() if v)
        return f"{self.concurrency} trial(s) at once, each {need}"


def per_worker(cfg: SweepConfig) -> dict[str, float]:
    from trainables.launch import worker_resources

    return worker_resources(cfg)


def per_trial(cfg: SweepConfig) -> dict[str, float]:
    workers = cfg.resources.workers
    return {k: v * workers for k, v in per_worker(cfg).items() if v}


def _largest_node(nodes: list[dict[str, float]], resource: str) -> float:
    return max((n.get(resource, 0.0) for n in nodes), default=0.0)


def plan(cfg: SweepConfig, cluster: dict[str, float], nodes: list[dict[str, float]], requested: Optional[int] = None, *, autoscaling: bool = False) -> Plan:
    """Concurrency for `cfg` on a cluster with total resources `cluster` and per-node `nodes`.

    With `autoscaling`, the cluster may grow: requests it cannot hold now are
    trusted, and `requested` (or 1) trials run at once."""
    need = per_trial(cfg)
    worker = per_worker(cfg)
    if not autoscaling:
        for resource, amount in need.items():
            have = cluster.get(resource, 0.0)
            if amount > have + _EPS:
                raise ClusterError(
                    f"a trial needs {amount:g} {resource} ({cfg.resources.workers} worker(s) x {worker[resource]:g}), the cluster has {have:g}",
                    path=_key_of(resource),
                )
        for resource, amount in worker.items():
            if amount and amount > _largest_node(nodes, resource) + _EPS:
                raise ClusterError(
                    f"one worker needs {amount:g} {resource}, the largest node has {_largest_node(nodes, resource):g}",
                    path=_key_of(resource),
                )
    if autoscaling:
        return Plan(need, requested or 1)
    fits = min(math.floor((cluster.get(r, 0.0) + _EPS) / a) for r, a in need.items() if a > 0)
    return Plan(need, max(1, min(fits, requested) if requested else fits))


def _key_of(resource: str) -> str:
    return {"CPU": "resources.cpus_per_worker", "GPU": "resources.gpus_per_worker"}.get(resource, f"resources.custom.{resource}")


def cluster_view() -> tuple[dict[str, float], list[dict[str, float]]]:
    """(total resources, resources of each alive node) of the connected Ray cluster."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    return dict(ray.cluster_resources()), nodes
