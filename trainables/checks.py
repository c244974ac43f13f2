"""Checks of a sweep against the trainables' registries: a data source, model, loss,
optimizer, schedule or augmentation preset that does not exist, or a loss that cannot
serve the task. Registered with `raysweep.config.checks` when this module is imported,
which the commands do (`raysweep.commands.load_checked`), not the config loader: the
schema stays apart from torch. The names come from the registries' catalogue
(`trainables.catalog`), so checking a sweep imports neither torch, timm nor albumentations.
"""

from __future__ import annotations

from raysweep.config.checks import check
from raysweep.config.schema import SweepConfig
from raysweep.errors import ConfigError
from raysweep.registry import suggest
from trainables.catalog import current


def _unknown(what: str, given: str, names, path: str) -> ConfigError:
    """The one-line error for a name no registry holds, with the closest names."""
    return ConfigError(f"unknown {what} {given!r}{suggest(given, names)}", path=path)


@check
def data_source_known(cfg: SweepConfig) -> None:
    from trainables.data.sources import SOURCES, required_fields

    source = SOURCES.get(cfg.data.kind, path="data.kind")
    for key in required_fields(source):
        if getattr(cfg.data, key) in (None, "", []):
            raise ConfigError(f"required for data.kind {cfg.data.kind!r}", path=f"data.{key}")


@check
def model_known(cfg: SweepConfig) -> None:
    catalog = current()
    if not catalog.model_exists(cfg.model.name):
        raise _unknown("model", cfg.model.name, catalog.models, "model.name")


@check
def loss_known(cfg: SweepConfig) -> None:
    names = current().losses
    if cfg.loss.name not in names:
        raise _unknown("loss", cfg.loss.name, names, "loss.name")


@check
def loss_serves_task(cfg: SweepConfig) -> None:
    """A declared task the loss cannot serve (an `auto` task is known only once the data is read)."""
    losses = current().losses
    task, name = cfg.data.task, cfg.loss.name
    if task == "auto" or name not in losses or task in losses[name].tasks:  # an unknown loss: `loss_known`'s
        return
    fitting = [other for other in sorted(losses) if task in losses[other].tasks]
    raise ConfigError(f"loss {name!r} needs {losses[name].needs}; data.task is {task} (use {' or '.join(fitting)})", path="loss.name")


@check
def optimizer_known(cfg: SweepConfig) -> None:
    from trainables.optim_names import resolve_optimizer_name

    names = current().optimizers
    if resolve_optimizer_name(cfg.optimizer.name) not in names:
        raise _unknown("optimizer", cfg.optimizer.name, names, "optimizer.name")


@check
def scheduler_known(cfg: SweepConfig) -> None:
    names = current().schedulers
    if cfg.scheduler.name not in names:
        raise _unknown("scheduler", cfg.scheduler.name, names, "scheduler.name")


@check
def augment_known(cfg: SweepConfig) -> None:
    names = current().augment_presets
    if cfg.augment.preset not in names:
        raise _unknown("augmentation preset", cfg.augment.preset, names, "augment.preset")


@check
def metric_reported(cfg: SweepConfig) -> None:
    """`search.metric` must be a key the trainer reports. The per-class keys
    (`val/f1/<class>`) are checked here against declared `data.classes`, else once the data
    is open (`trainables.data.check.check_data`)."""
    refuse_unreported_metrics(cfg, cfg.data.task, cfg.data.classes)


def refuse_unreported_metrics(cfg: SweepConfig, task: str, classes) -> None:
    """Refuse a `search.metric` that a trainer of `cfg` never reports for data of `task` and
    `classes` (None: not known yet, and any per-class key passes), naming the closest key."""
    import difflib

    from trainables.metric_names import PER_CLASS, reported_metrics

    reported = reported_metrics(cfg, task, classes)
    for metric in cfg.search.metrics:
        kind = metric.split("/")[1] if metric.startswith("val/") and metric.count("/") >= 2 else None
        if metric in reported or (classes is None and kind in PER_CLASS):
            continue
        close = difflib.get_close_matches(metric, sorted(reported), n=1, cutoff=0.5)
        hint = f", did you mean {close[0]!r}?" if close else ""
        allowed = sorted(n for n in reported if n.startswith("val/") and n.count("/") == 1) + ["train/loss"]
        allowed += [f"val/{kind}/<class>" for kind in PER_CLASS]
        raise ConfigError(f"the trainer never reports {metric!r}{hint}; allowed: {', '.join(allowed)}", path="search.metric")
