"""Optimizers (through `timm.optim.create_optimizer_v2`) and epoch schedules
(timm's scheduler classes, plus the continuous exponential decay of the
CIFAR report), by name.

Schedules follow timm's convention: `scheduler.step(epoch + 1, metric)` after
each epoch sets the learning rate of the next one.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
from timm import optim as timm_optim
from timm import scheduler as timm_sched
from timm.scheduler.scheduler import Scheduler

from raysweep.config.sections.training import OptimizerConfig, SchedulerConfig
from raysweep.registry import Registry

# raysweep names that are spelled differently in timm
_ALIASES = {"ranger": "lookahead_radam"}


def resolve_optimizer_name(name: str, nesterov: bool = False) -> str:
    name = _ALIASES.get(name, name)
    if name == "sgd":
        # timm's "sgd" is Nesterov SGD; the reports' SGD is classical momentum unless asked
        return "nesterov" if nesterov else "momentum"
    return name


def optimizer_names() -> list[str]:
    names = set(timm_optim.list_optimizers())
    names |= {f"lookahead_{n}" for n in names} | set(_ALIASES)
    return sorted(names)


def optimizer_kwargs(cfg: OptimizerConfig) -> dict:
    kwargs = dict(opt=resolve_optimizer_name(cfg.name, cfg.nesterov), lr=cfg.lr, weight_decay=cfg.weight_decay)
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


class ExponentialLRScheduler(Scheduler):
    """lr = lr0 * decay_rate ** (epoch / decay_epochs): the CIFAR report's
    "decay factor 0.8 every 3 epochs", continuous rather than staircase."""

    def __init__(self, optimizer: torch.optim.Optimizer, decay_epochs: float, decay_rate: float, warmup_t: int = 0, warmup_lr_init: float = 0.0):
        super().__init__(optimizer, param_group_field="lr", initialize=True)
        self.decay_epochs = decay_epochs
        self.decay_rate = decay_rate
        self.warmup_t = warmup_t
        self.warmup_lr_init = warmup_lr_init
        if warmup_t:
            self.warmup_steps = [(v - warmup_lr_init) / warmup_t for v in self.base_values]
            super().update_groups(self.warmup_lr_init)

    def _get_lr(self, t: int) -> list[float]:
        if t < self.warmup_t:
            return [self.warmup_lr_init + t * s for s in self.warmup_steps]
        return [v * math.pow(self.decay_rate, t / self.decay_epochs) for v in self.base_values]


SchedulerFactory = Callable[[torch.optim.Optimizer, SchedulerConfig, int, str], Optional[Scheduler]]
SCHEDULERS: Registry[SchedulerFactory] = Registry("scheduler")


def _warmup(cfg: SchedulerConfig) -> dict:
    return dict(warmup_t=cfg.warmup_epochs, warmup_lr_init=cfg.warmup_lr)


@SCHEDULERS.register("none")
def _none(opt, cfg: SchedulerConfig, epochs: int, mode: str) -> Optional[Scheduler]:
    return None


@SCHEDULERS.register("step")
def _step(opt, cfg: SchedulerConfig, epochs: int, mode: str) -> Scheduler:
    """Staircase: multiply by decay_rate every decay_epochs (IJCNN: 0.1 every 10)."""
    return timm_sched.StepLRScheduler(opt, decay_t=cfg.decay_epochs, decay_rate=cfg.decay_rate, **_warmup(cfg))


@SCHEDULERS.register("multistep")
def _multistep(opt, cfg: SchedulerConfig, epochs: int, mode: str) -> Scheduler:
    return timm_sched.MultiStepLRScheduler(opt, decay_t=list(cfg.milestones), decay_rate=cfg.decay_rate, **_warmup(cfg))


@SCHEDULERS.register("cosine")
def _cosine(opt, cfg: SchedulerConfig, epochs: int, mode: str) -> Scheduler:
    return timm_sched.CosineLRScheduler(opt, t_initial=cfg.t_max or epochs, lr_min=cfg.min_lr, **_warmup(cfg))


@SCHEDULERS.register("exponential")
def _exponential(opt, cfg: SchedulerConfig, epochs: int, mode: str) -> Scheduler:
    return ExponentialLRScheduler(opt, decay_epochs=cfg.decay_epochs, decay_rate=cfg.decay_rate, **_warmup(cfg))


@SCHEDULERS.register("plateau")
def _plateau(opt, cfg: SchedulerConfig, epochs: int, mode: str) -> Scheduler:
    return timm_sched.PlateauLRScheduler(opt, decay_rate=cfg.decay_rate, patience_t=cfg.patience, lr_min=cfg.min_lr, mode=mode, **_warmup(cfg))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, epochs: int, mode: str = "max") -> Optional[Scheduler]:
    return SCHEDULERS.get(cfg.name, path="scheduler.name")(optimizer, cfg, epochs, mode)
