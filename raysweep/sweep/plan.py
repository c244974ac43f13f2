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
    fold_groups: int = 1  # per-trial CV: folds trained at once, each group on its own workers

    def describe(self) -> str:
        need = ", ".join(f"{v:g} {k}" for k, v in self.per_trial.items() if v)
        folds = f", {self.fold_groups} folds at once" if self.fold_groups > 1 else ""
        return f"{self.concurrency} trial(s) at once, each {need}{folds}"


def per_worker(cfg: SweepConfig) -> dict[str, float]:
    from trainables.launch import worker_resources

    return worker_resources(cfg)


def per_trial(cfg: SweepConfig, fold_groups: int = 1) -> dict[str, float]:
    workers = cfg.resources.workers * fold_groups
    return {k: v * workers for k, v in per_worker(cfg).items() if v}


def fold_groups(cfg: SweepConfig, cluster: dict[str, float], *, autoscaling: bool = False) -> int:
    """How many folds of a per-trial CV trial train at once (`search.cv.parallel`): all k with
    `true`, one group in lockstep with `false` or inline; with `auto`, as many as one trial's
    folds fit in the cluster (all k when it may grow), the rest taking turns within each epoch."""
    cv, k = cfg.search.cv, cfg.data.folds
    if cv is None or cv.mode != "per_trial" or cv.parallel is False or cfg.resources.inline or k < 2:
        return 1
    if cv.parallel is True or autoscaling:
        return k
    one = per_trial(cfg)
    fits = min((math.floor((cluster.get(r, 0.0) + _EPS) / a) for r, a in one.items() if a > 0), default=k)
    return max(1, min(k, fits))


def _largest_node(nodes: list[dict[str, float]], resource: str) -> float:
    return max((n.get(resource, 0.0) for n in nodes), default=0.0)


def plan(cfg: SweepConfig, cluster: dict[str, float], nodes: list[dict[str, float]], requested: Optional[int] = None, *, autoscaling: bool = False) -> Plan:
    """Concurrency for `cfg` on a cluster with total resources `cluster` and per-node `nodes`.

    With `autoscaling`, the cluster may grow: requests it cannot hold now are
    trusted, and `requested` (or 1) trials run at once."""
    groups = fold_groups(cfg, cluster, autoscaling=autoscaling)
    need = per_trial(cfg, groups)
    worker = per_worker(cfg)
    if not autoscaling:
        for resource, amount in need.items():
            have = cluster.get(resource, 0.0)
            if amount > have + _EPS:
                folds = f"{groups} folds at once x " if groups > 1 else ""
                raise ClusterError(
                    f"a trial needs {amount:g} {resource} ({folds}{cfg.resources.workers} worker(s) x {worker[resource]:g}), the cluster has {have:g}",
                    path=_key_of(resource) if groups == 1 else "search.cv.parallel",
                )
        for resource, amount in worker.items():
            if amount and amount > _largest_node(nodes, resource) + _EPS:
                raise ClusterError(
                    f"one worker needs {amount:g} {resource}, the largest node has {_largest_node(nodes, resource):g}",
                    path=_key_of(resource),
                )
    if autoscaling:
        return Plan(need, requested or 1, groups)
    fits = min(math.floor((cluster.get(r, 0.0) + _EPS) / a) for r, a in need.items() if a > 0)
    return Plan(need, max(1, min(fits, requested) if requested else fits), groups)


def _key_of(resource: str) -> str:
    return {"CPU": "resources.cpus_per_worker", "GPU": "resources.gpus_per_worker"}.get(resource, f"resources.custom.{resource}")


def cluster_view() -> tuple[dict[str, float], list[dict[str, float]]]:
    """(total resources, resources of each alive node) of the connected Ray cluster."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    return dict(ray.cluster_resources()), nodes
