"""Checks of a sweep against the trainables' registries: a data source, model, loss,
optimizer, schedule or augmentation preset that does not exist, or a loss that cannot
serve the task. Registered with `raysweep.config.checks` when this module is imported,
which the commands do (`raysweep.commands.load_checked`), not the config loader: the
schema stays apart from torch. The registries are imported inside each check, so the
checks that read only the config run (and refuse) before torch and timm are loaded.
"""

from __future__ import annotations

from raysweep.config.checks import check
from raysweep.config.schema import SweepConfig
from raysweep.errors import ConfigError
from raysweep.registry import suggest


@check
def data_source_known(cfg: SweepConfig) -> None:
    from trainables.data.sources import SOURCES, required_fields

    source = SOURCES.get(cfg.data.kind, path="data.kind")
    for key in required_fields(source):
        if getattr(cfg.data, key) in (None, "", []):
            raise ConfigError(f"required for data.kind {cfg.data.kind!r}", path=f"data.{key}")



@check
def model_known(cfg: SweepConfig) -> None:
    from trainables.models import model_exists, model_names

    if not model_exists(cfg.model.name):
        raise ConfigError(f"unknown model {cfg.model.name!r}{suggest(cfg.model.name, model_names())}", path="model.name")



@check
def loss_known(cfg: SweepConfig) -> None:
    from trainables.losses import LOSSES

    LOSSES.get(cfg.loss.name, path="loss.name")



@check
def loss_serves_task(cfg: SweepConfig) -> None:
    """A declared task the loss cannot serve (an `auto` task is known only once the data is read)."""
    from trainables.losses import LOSSES, loss_needs, loss_tasks

    task, name = cfg.data.task, cfg.loss.name
    if task == "auto" or task in loss_tasks(name):
        return
    fitting = [other for other in LOSSES.names() if task in loss_tasks(other)]
    raise ConfigError(f"loss {name!r} needs {loss_needs(name)}; data.task is {task} (use {' or '.join(fitting)})", path="loss.name")



@check
def optimizer_known(cfg: SweepConfig) -> None:
    from trainables.optim import optimizer_names, resolve_optimizer_name

    name = resolve_optimizer_name(cfg.optimizer.name)
    if name not in optimizer_names():
        raise ConfigError(f"unknown optimizer {cfg.optimizer.name!r}{suggest(cfg.optimizer.name, optimizer_names())}", path="optimizer.name")



@check
def scheduler_known(cfg: SweepConfig) -> None:
    from trainables.optim import SCHEDULERS

    SCHEDULERS.get(cfg.scheduler.name, path="scheduler.name")



@check
def augment_known(cfg: SweepConfig) -> None:
    from trainables.augment import PRESETS

    PRESETS.get(cfg.augment.preset, path="augment.preset")

