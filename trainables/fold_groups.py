"""Per-trial cross-validation with the folds trained at once: one Ray Train run whose ranks
are split into fold groups.

    ranks 0..w-1 -> group 0, ranks w..2w-1 -> group 1, ...    (w = resources.workers)
    group j trains folds j, j+g, j+2g, ... in lockstep         (g groups, k folds)

With g = k every fold has its own worker(s); with fewer groups than folds the folds of a group
take turns within each epoch, as all k do in a single group (the lockstep trial, g = 1). Inside
a group of several workers, DDP runs over a torch.distributed subgroup (`new_group`), so one
fold's gradients are averaged only with that fold's ranks. Each epoch the group leaders send
their folds' statistics, predictions and state to rank 0, which computes the folds' mean and
spread and writes the trial's one checkpoint (every fold's state, as a lockstep trial's), so the
trial reports, is pruned on, and resumes exactly as before, with any number of groups.

Ray Train has no native cross-validation (ray-project/ray#53581); one run rather than k runs
keeps one trial = one Train run, one checkpoint history and one placement group to free.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from trainables.session import Session


def group_folds(num_folds: int, groups: int, group: int) -> list[int]:
    """The folds group `group` of `groups` trains."""
    return list(range(group, num_folds, groups))


class FoldGroupSession(Session):
    """What a `FoldRun` sees of its fold group: its rank and size in the group, DDP and sampling
    within the group. Collectives reach the group's ranks only."""

    def __init__(self, outer: Session, groups: int):
        if outer.world_size % groups:
            raise ValueError(f"{outer.world_size} workers do not split into {groups} equal fold groups")
        size = outer.world_size // groups
        self.outer = outer
        self.group = outer.rank // size
        self.rank = outer.rank % size
        self.world_size = size
        self.device = outer.device
        self.node_id = getattr(outer, "node_id", None)
        self.pg = None
        if outer.world_size > 1:
            # every rank creates every group, in the same order (torch.distributed's rule)
            for j in range(groups):
                pg = dist.new_group(ranks=list(range(j * size, (j + 1) * size))) if size > 1 else None
                if j == self.group:
                    self.pg = pg

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        model = model.to(self.device)
        if self.world_size == 1:
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids, process_group=self.pg)

    def prepare_loader(self, loader: DataLoader) -> DataLoader:
        if self.world_size == 1:
            return loader
        sampler = DistributedSampler(loader.dataset, num_replicas=self.world_size, rank=self.rank, shuffle=isinstance(loader.sampler, RandomSampler))
        return DataLoader(
            loader.dataset, batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
            pin_memory=loader.pin_memory, worker_init_fn=loader.worker_init_fn,
        )

    def all_gather_object(self, obj: Any) -> list[Any]:
        if self.world_size == 1:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.pg)
        return out

    def all_reduce_max(self, value: float) -> float:
        if self.world_size == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.pg)
        return float(t.item())

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self.pg)
        return tensor


def to_main(outer: Session, obj: Any) -> list[Any]:
    """Every rank's `obj`, in rank order, on rank 0 (an empty list elsewhere)."""
    if outer.world_size == 1:
        return [obj]
    out: list[Any] = [None] * outer.world_size if outer.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out or []
