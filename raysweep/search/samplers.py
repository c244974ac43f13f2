"""Optuna samplers by `search.sampler` (with `algorithm: optuna`).

TPE is the default: multivariate and grouped, so it models conditional
dimensions (gamma only under focal) and correlations between dimensions, with
the constant liar so that trials running at once do not all draw the same
point.
"""

from __future__ import annotations

import warnings
from typing import Callable

import optuna

from raysweep.registry import Registry

SamplerFactory = Callable[[int, bool], optuna.samplers.BaseSampler]  # (seed, multi_objective)
SAMPLERS: Registry[SamplerFactory] = Registry("Optuna sampler")


@SAMPLERS.register("tpe")
def _tpe(seed: int, multi: bool) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=5)


@SAMPLERS.register("random")
def _random(seed: int, multi: bool) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


@SAMPLERS.register("cmaes")
def _cmaes(seed: int, multi: bool) -> optuna.samplers.BaseSampler:
    # CMA-ES handles float/int dimensions; categorical ones fall back to random sampling
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)


@SAMPLERS.register("qmc")
def _qmc(seed: int, multi: bool) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)


@SAMPLERS.register("gp")
def _gp(seed: int, multi: bool) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.GPSampler(seed=seed)


@SAMPLERS.register("nsga2")
def _nsga2(seed: int, multi: bool) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(seed=seed)


# samplers that optimize a single objective only
SINGLE_OBJECTIVE = {"cmaes", "qmc"}


def build_sampler(name: str, seed: int, multi_objective: bool) -> optuna.samplers.BaseSampler:
    return SAMPLERS.get(name, path="search.sampler")(seed, multi_objective)
