"""Cross-field checks of a validated sweep, each a small registered function.

Pydantic checks one field at a time; these check what spans fields or needs a
registry (an unknown loss or model name, a fold outside the folds, a loss that
cannot serve the task). They run on the defaults and once per value of every
search domain, so a bad value anywhere in the space is refused before any
trial starts. Registries that live beside torch are imported only here, on
demand, so the schema itself stays light.
"""

from __future__ import annotations

import copy
from typing import Callable

from raysweep.config.domains import CASES_PATH, assignments
from raysweep.config.load import SET_SOURCE, Sweep, set_path, validate
from raysweep.config.schema import SweepConfig
from raysweep.config.sections.data import TEST_PATH_REPLACES
from raysweep.errors import ConfigError
from raysweep.registry import suggest

Check = Callable[[SweepConfig], None]
CHECKS: list[Check] = []  # those that read only the config first, in the order registered


def check(fn: Check) -> Check:
    CHECKS.append(fn)
    return fn


def config_only(fn: Check) -> Check:
    """Register a check that reads nothing but the config. It runs before the checks
    that import a registry (and torch, timm, Ray with it: seconds), so `raysweep
    validate` refuses such a mistake at once."""
    fn.config_only = True  # type: ignore[attr-defined]
    CHECKS.insert(sum(getattr(f, "config_only", False) for f in CHECKS), fn)
    return fn


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


@config_only
def ldam_margin_form(cfg: SweepConfig) -> None:
    if cfg.loss.name == "ldam" and (cfg.loss.max_m is None) == (cfg.loss.C is None):
        got = "neither" if cfg.loss.max_m is None else "both"
        raise ConfigError(
            f"loss 'ldam' takes exactly one of loss.max_m (largest margin, Cao et al.) and loss.C (margin C / n_j^(1/4)); got {got}",
            path="loss.C",
        )


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


@config_only
def fold_within_folds(cfg: SweepConfig) -> None:
    if cfg.data.folds is not None and cfg.data.fold >= cfg.data.folds:
        raise ConfigError(f"must be < data.folds ({cfg.data.folds}), got {cfg.data.fold}", path="data.fold")


@config_only
def stages_in_sequence(cfg: SweepConfig) -> None:
    from raysweep.config.sections.training import SEQUENTIAL_STAGES

    sch = cfg.scheduler
    if sch.name != "sequential":
        return
    if len(sch.stages) < 2:
        raise ConfigError(f"sequential needs two or more stages, e.g. [cosine, multistep]; got {sch.stages}", path="scheduler.stages")
    for i, stage in enumerate(sch.stages):
        if stage not in SEQUENTIAL_STAGES:
            raise ConfigError(f"unknown stage {stage!r}{suggest(stage, SEQUENTIAL_STAGES)}", path=f"scheduler.stages[{i}]")
    starts = sch.stage_starts
    if len(starts) != len(sch.stages) - 1:
        raise ConfigError(f"needs one start epoch per stage after the first ({len(sch.stages) - 1}), got {starts}", path="scheduler.stage_starts")
    if any(b <= a for a, b in zip([0, *starts], starts)) or starts[-1] >= cfg.train.epochs:
        raise ConfigError(f"must rise from above 0 to below train.epochs ({cfg.train.epochs}), got {starts}", path="scheduler.stage_starts")
    if sch.warmup_epochs:
        raise ConfigError("sequential takes no warmup_epochs (its stages are the whole schedule); leave it 0", path="scheduler.warmup_epochs")


@config_only
def test_split_fits_the_source(cfg: SweepConfig) -> None:
    data = cfg.data
    if data.official_test and data.kind != "torchvision":
        raise ConfigError(f"only torchvision datasets ship an official test split; for data.kind {data.kind!r} give data.test_path", path="data.official_test")
    if data.test_path is not None and data.kind not in TEST_PATH_REPLACES:
        raise ConfigError(f"a held-out test file is read for data.kind {', '.join(TEST_PATH_REPLACES)}, not {data.kind!r}", path="data.test_path")
    if data.official_test and data.test_path is not None:
        raise ConfigError("give one test split: data.official_test or data.test_path", path="data.test_path")


def _configs_to_check(sweep: Sweep):
    """The defaults, then each domain value (each case) on its own: (what it is, config)."""
    yield None, sweep.config
    defaults = sweep.defaults_raw()
    for path, dom in sweep.space.items():
        for label, value in dom.candidates():
            if dom.is_range:
                continue  # ranges were checked field by field; cross-field rules use finite values
            raw = copy.deepcopy(defaults)
            for key, one in assignments(path, dom, value).items():
                set_path(raw, key, one)
            yield (path, label, value), validate(raw, sweep.source, sweep.overridden)


def run_checks(sweep: Sweep) -> None:
    for where, cfg in _configs_to_check(sweep):
        for fn in CHECKS:
            try:
                fn(cfg)
            except ConfigError as e:
                if where is not None:
                    path, label, value = where
                    if path == CASES_PATH and e.path in value:  # a case's own value: search.cases[1].model.name
                        e = ConfigError(e.message, path=f"{label}.{e.path}")
                    elif e.path == path:
                        e = ConfigError(f"{e.message} (in {label})", path=e.path)
                    else:
                        e = ConfigError(f"{e.message} (with {path} = {value!r})", path=e.path)
                source = SET_SOURCE if any(e.path and (e.path == k or e.path.startswith((k + ".", k + "["))) for k in sweep.overridden) else sweep.source
                raise e.with_source(source) from None
