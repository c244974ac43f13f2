"""Cross-field checks of the `search` section (registered with the config checks)."""

from __future__ import annotations

from raysweep.config.checks import check, config_only
from raysweep.config.schema import SweepConfig
from raysweep.errors import ConfigError


@check
def sampler_known(cfg: SweepConfig) -> None:
    from raysweep.search.samplers import SAMPLERS, SINGLE_OBJECTIVE

    SAMPLERS.get(cfg.search.sampler, path="search.sampler")
    if len(cfg.search.metrics) > 1 and cfg.search.algorithm == "optuna" and cfg.search.sampler in SINGLE_OBJECTIVE:
        raise ConfigError(f"sampler {cfg.search.sampler!r} optimizes one metric; use tpe, nsga2 or random for {len(cfg.search.metrics)} metrics", path="search.sampler")


@check
def trial_scheduler_fits(cfg: SweepConfig) -> None:
    from raysweep.search.schedulers import TRIAL_SCHEDULERS, scheduler_name

    if scheduler_name(cfg.search) in ("asha", "hyperband") and cfg.search.reduction_factor != int(cfg.search.reduction_factor):
        # Optuna's successive halving keeps the top 1/reduction_factor: a whole number
        raise ConfigError(f"{scheduler_name(cfg.search)} takes a whole reduction factor (2, 3, 4, ...), got {cfg.search.reduction_factor}", path="search.reduction_factor")
    if cfg.search.scheduler is None:
        return
    TRIAL_SCHEDULERS.get(cfg.search.scheduler, path="search.scheduler")
    if len(cfg.search.metrics) > 1 and cfg.search.scheduler not in ("none", "asha"):
        # asha on several metrics is MOASHA (raysweep.search.moasha); the others rank one metric
        raise ConfigError(f"{cfg.search.scheduler} stops trials on one metric; with {len(cfg.search.metrics)} metrics use scheduler: asha (multi-objective ASHA) or none", path="search.scheduler")


@config_only
def max_t_within_epochs(cfg: SweepConfig) -> None:
    if cfg.search.max_t is not None and cfg.search.max_t > cfg.train.epochs:
        raise ConfigError(f"must be <= train.epochs ({cfg.train.epochs}), got {cfg.search.max_t}", path="search.max_t")


@config_only
def cross_validation_has_folds(cfg: SweepConfig) -> None:
    if cfg.search.cv is not None and not cfg.data.folds:
        raise ConfigError(f"cross-validation ({cfg.search.cv.mode}) needs data.folds", path="search.cv.mode")
