"""Optimizers (through `timm.optim.create_optimizer_v2`) and epoch schedules
(timm's scheduler classes, plus the continuous exponential decay of the
CIFAR report), by name.

    optimizer = build_optimizer(model, cfg.optimizer)
    scheduler = build_scheduler(optimizer, cfg.scheduler, epochs=cfg.train.epochs, mode="max")
    ...
    scheduler.step(epoch + 1, metric)   # after each epoch: sets the next epoch's lr

Weight decay goes only to weights: timm's `filter_bias_and_bn` puts biases and
every 1-d parameter (norm scales and shifts) in a group with weight_decay 0,
as timm's train.py does; the reports' plain `optim.SGD(weight_decay=...)`
decayed those too, which hurts batch-norm nets and is not reproduced.

Every schedule counts epochs from 0 including warmup: `warmup_epochs` replace
the schedule's first epochs by a linear ramp from `warmup_lr`, and milestones,
decay periods and T_max stay in absolute epochs.

`sequential` chains schedules with torch's own `SequentialLR` (ECE449's two
stages, cosine then multistep): its stages are torch schedulers, each counting
its epochs from the epoch it starts at (`scheduler.stage_starts`), as
SequentialLR does, and `SequentialSchedule` steps it once per epoch behind the
same `step(epoch, metric)` the timm schedules take.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, Callable, Optional

import torch
from timm import optim as timm_optim
from timm import scheduler as timm_sched
from timm.scheduler.scheduler import Scheduler

from raysweep.config.sections.training import OptimizerConfig, SchedulerConfig
from raysweep.registry import Registry
from trainables.optim_names import COMMON_KEYS, OPTIMIZER_ALIASES, resolve_optimizer_name


def optimizer_names() -> list[str]:
    names = set(timm_optim.list_optimizers())
    names |= {f"lookahead_{n}" for n in names} | set(OPTIMIZER_ALIASES)
    return sorted(names)


def optimizer_keys(name: str) -> set[str]:
    """The `optimizer.*` keys that mean something to optimizer `name` (timm's record of it:
    momentum, betas, eps), so a search over several optimizers samples each key only where it applies."""
    keys = set(COMMON_KEYS)
    try:
        info = timm_optim.get_optimizer_info(resolve_optimizer_name(name).removeprefix("lookahead_"))
    except (KeyError, ValueError):
        return keys
    if info.has_momentum:
        keys.add("momentum")
    if info.has_betas:
        keys.add("betas")
    if info.has_eps:
        keys.add("eps")
    if name == "sgd":
        keys.add("nesterov")
    return keys


def optimizer_kwargs(cfg: OptimizerConfig) -> dict:
    """`optimizer.*` as keyword arguments for `create_optimizer_v2`; each optimizer
    gets only the hyperparameters it has (momentum for SGD, betas/eps for Adam)."""
    kwargs: dict[str, Any] = dict(opt=resolve_optimizer_name(cfg.name, cfg.nesterov), lr=cfg.lr, weight_decay=cfg.weight_decay)
    info = timm_optim.get_optimizer_info(kwargs["opt"].removeprefix("lookahead_"))
    if info.has_momentum:
        kwargs["momentum"] = cfg.momentum
    if info.has_betas and cfg.betas is not None:
        kwargs["betas"] = tuple(cfg.betas)
    if info.has_eps and cfg.eps is not None:
        kwargs["eps"] = cfg.eps
    return kwargs


def build_optimizer(model: torch.nn.Module, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    return timm_optim.create_optimizer_v2(model, **optimizer_kwargs(cfg))


class _Warmup(Scheduler):
    """A timm scheduler whose first `warmup_t` epochs ramp linearly from `warmup_lr_init`."""

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_t: int = 0, warmup_lr_init: float = 0.0):
        super().__init__(optimizer, param_group_field="lr", initialize=True)
        self.warmup_t = warmup_t
        self.warmup_lr_init = warmup_lr_init
        self.warmup_steps = [(v - warmup_lr_init) / warmup_t for v in self.base_values] if warmup_t else []
        if warmup_t:
            self.update_groups(warmup_lr_init)

    def _get_lr(self, t: int) -> list[float]:
        if t < self.warmup_t:
            return [self.warmup_lr_init + t * s for s in self.warmup_steps]
        return self._after_warmup(t)

    def _after_warmup(self, t: int) -> list[float]:
        raise NotImplementedError


class ExponentialLRScheduler(_Warmup):
    """lr = lr0 * decay_rate ** (epoch / decay_epochs): the CIFAR report's
    "decay factor 0.8 every 3 epochs", continuous rather than staircase."""

    def __init__(self, optimizer: torch.optim.Optimizer, decay_epochs: float, decay_rate: float, warmup_t: int = 0, warmup_lr_init: float = 0.0):
        self.decay_epochs = decay_epochs
        self.decay_rate = decay_rate
        super().__init__(optimizer, warmup_t, warmup_lr_init)

    def _after_warmup(self, t: int) -> list[float]:
        return [v * math.pow(self.decay_rate, t / self.decay_epochs) for v in self.base_values]


class MultiStepLRScheduler(_Warmup):
    """lr = lr0 * decay_rate ** (milestones passed), as torch's MultiStepLR (ECE449:
    [5, 10, 20, 40, 75], 0.25): milestone m first applies to epoch m (0-based).
    timm's own applies it one epoch early (at t = m - 1), kept there for old schedules."""

    def __init__(self, optimizer: torch.optim.Optimizer, milestones: list[int], decay_rate: float, warmup_t: int = 0, warmup_lr_init: float = 0.0):
        self.milestones = sorted(milestones)
        self.decay_rate = decay_rate
        super().__init__(optimizer, warmup_t, warmup_lr_init)

    def _after_warmup(self, t: int) -> list[float]:
        return [v * self.decay_rate ** bisect.bisect_right(self.milestones, t) for v in self.base_values]


class PlateauLRScheduler(_Warmup):
    """Multiply lr by `decay_rate` once the objective has not improved (in `mode`)
    for more than `patience` epochs: torch's ReduceLROnPlateau after a warmup.

    timm's version is deprecated and checkpoints only the best value, so a resumed
    trial would lose its count of bad epochs; this one checkpoints all of it.
    Objectives of warmup epochs are not counted."""

    def __init__(self, optimizer: torch.optim.Optimizer, decay_rate: float, patience: int, lr_min: float, mode: str, warmup_t: int = 0, warmup_lr_init: float = 0.0):
        super().__init__(optimizer, warmup_t, warmup_lr_init)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=decay_rate, patience=patience, min_lr=lr_min)

    def step(self, epoch: int, metric: Optional[float] = None) -> None:
        self.metric = metric
        if epoch <= self.warmup_t:
            self.update_groups(self._get_lr(epoch) if epoch < self.warmup_t else self.base_values)
        elif metric is not None:
            self.plateau.step(metric)

    def _after_warmup(self, t: int) -> list[float]:
        return list(self.base_values)

    def state_dict(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "plateau")}
        state["plateau"] = self.plateau.state_dict()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        self.plateau.load_state_dict(state.pop("plateau"))
        self.__dict__.update(state)


SchedulerFactory = Callable[[torch.optim.Optimizer, SchedulerConfig, int, str], Optional["Scheduler | SequentialSchedule"]]
SCHEDULERS: Registry[SchedulerFactory] = Registry("scheduler")


def _warmup(cfg: SchedulerConfig) -> dict:
    return dict(warmup_t=cfg.warmup_epochs, warmup_lr_init=cfg.warmup_lr)


@SCHEDULERS.register("none")
def _none(opt, cfg: SchedulerConfig, epochs: int, mode: str) -> Optional[Scheduler]:
    return None


@SCHEDULERS.register("step")
def _step(opt, cfg: SchedulerConfig, epochs: int, mode: str) -> Scheduler:
    """Staircase: multiply by decay_rate every decay_epochs (IJCNN: 0.1 every 10)."""
    return timm_sched.StepLRScheduler(opt, decay_t=cfg.decay_epochs, decay_rate=cfg.decay_rate, warmup_prefix=False, **_warmup(cfg))


@SCHEDULERS.register("multistep")
def _multistep(opt, cfg: SchedulerConfig, epochs: int, mode: str) -> Scheduler:
    """Multiply by decay_rate at each of `milestones` (ECE449: [5, 10, 20, 40, 75], 0.25)."""
    return MultiStepLRScheduler(opt, milestones=list(cfg.milestones), decay_rate=cfg.decay_rate, **_warmup(cfg))


@SCHEDULERS.register("cosine")
def _cosine(opt, cfg: SchedulerConfig, epochs: int, mode: str) -> Scheduler:
    """Half a cosine from lr to min_lr over t_max epochs (default: all), then min_lr."""
    return timm_sched.CosineLRScheduler(opt, t_initial=cfg.t_max or epochs, lr_min=cfg.min_lr, warmup_prefix=False, **_warmup(cfg))


@SCHEDULERS.register("exponential")
def _exponential(opt, cfg: SchedulerConfig, epochs: int, mode: str) -> Scheduler:
    """lr0 * decay_rate ** (epoch / decay_epochs) (CIFAR report: 0.8 every 3 epochs)."""
    return ExponentialLRScheduler(opt, decay_epochs=cfg.decay_epochs, decay_rate=cfg.decay_rate, **_warmup(cfg))


@SCHEDULERS.register("plateau")
def _plateau(opt, cfg: SchedulerConfig, epochs: int, mode: str) -> Scheduler:
    """Multiply by decay_rate after `patience` epochs without a better objective."""
    return PlateauLRScheduler(opt, decay_rate=cfg.decay_rate, patience=cfg.patience, lr_min=cfg.min_lr, mode=mode, **_warmup(cfg))


# a stage of `sequential`: (optimizer, scheduler section, the stage's length in epochs) -> a torch scheduler
Stage = Callable[[torch.optim.Optimizer, SchedulerConfig, int], torch.optim.lr_scheduler.LRScheduler]
STAGES: Registry[Stage] = Registry("sequential stage")


@STAGES.register("none")
def _constant_stage(opt, cfg: SchedulerConfig, length: int):
    return torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)


@STAGES.register("step")
def _step_stage(opt, cfg: SchedulerConfig, length: int):
    return torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, round(cfg.decay_epochs)), gamma=cfg.decay_rate)


@STAGES.register("multistep")
def _multistep_stage(opt, cfg: SchedulerConfig, length: int):
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.milestones), gamma=cfg.decay_rate)


@STAGES.register("cosine")
def _cosine_stage(opt, cfg: SchedulerConfig, length: int):
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.t_max or length, eta_min=cfg.min_lr)


@STAGES.register("exponential")
def _exponential_stage(opt, cfg: SchedulerConfig, length: int):
    """Continuous, as `exponential`: decay_rate every decay_epochs, spread over each epoch."""
    return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.decay_rate ** (1.0 / cfg.decay_epochs))


class SequentialSchedule:
    """torch's SequentialLR behind the epoch-indexed `step(epoch, metric)` of the timm schedules:
    stepped once per epoch up to `epoch`, its whole state (every stage's) checkpointed."""

    def __init__(self, optimizer: torch.optim.Optimizer, stages: list, starts: list[int]):
        self.sequential = torch.optim.lr_scheduler.SequentialLR(optimizer, stages, milestones=list(starts))
        self.epoch = 0

    def step(self, epoch: int, metric: Optional[float] = None) -> None:
        while self.epoch < epoch:
            self.sequential.step()
            self.epoch += 1

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "sequential": self.sequential.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.sequential.load_state_dict(state["sequential"])
        # building the stages reset the optimizer's lr to the first stage's: put the resumed one back
        for group, lr in zip(self.sequential.optimizer.param_groups, self.sequential.get_last_lr()):
            group["lr"] = lr


@SCHEDULERS.register("sequential")
def _sequential(opt, cfg: SchedulerConfig, epochs: int, mode: str) -> SequentialSchedule:
    """`stages` one after another, stage k from epoch `stage_starts[k - 1]` (ECE449: cosine, then multistep)."""
    bounds = [0, *cfg.stage_starts, epochs]
    stages = [STAGES.get(name, path=f"scheduler.stages[{k}]")(opt, cfg, bounds[k + 1] - bounds[k]) for k, name in enumerate(cfg.stages)]
    return SequentialSchedule(opt, stages, cfg.stage_starts)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, epochs: int, mode: str = "max") -> Optional[Scheduler]:
    """The schedule `scheduler.name`, or None for `none`; `mode` is the objective's
    direction, which `plateau` needs."""
    return SCHEDULERS.get(cfg.name, path="scheduler.name")(optimizer, cfg, epochs, mode)
