"""The whole sweep file as one typed object.

`SweepConfig` is what the rest of raysweep sees: the sweep file validated once
with every search domain replaced by a concrete value. It imports neither Ray
nor torch, so validating a file is quick.
"""

from __future__ import annotations

import typing
from typing import Any, Optional

from pydantic import BaseModel, Field, model_validator

from raysweep.config.base import SEARCHABLE, Section, fixed
from raysweep.config.sections.data import DataConfig
from raysweep.config.sections.model import AugmentConfig, ModelConfig
from raysweep.config.sections.run import ResourcesConfig, SearchConfig, TrackingConfig
from raysweep.config.sections.training import (
    LossConfig,
    OptimizerConfig,
    SchedulerConfig,
    TrainConfig,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # a sweep's name is a directory name: no path can escape storage
SECTIONS = ("data", "model", "augment", "loss", "optimizer", "scheduler", "train", "resources", "search", "tracking")


class SweepConfig(Section):
    name: str = fixed(..., pattern=NAME_PATTERN, description="the sweep's name: letters, digits, _ . -")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _trial_kind(self):
        """`resources.inline` unset: a one-worker trial trains in its Tune trial actor. It needs
        nothing a Ray Train worker group gives (no process group; Tune restarts it from its last
        checkpoint as Train would), and a group costs a controller and a worker process per trial,
        seconds each (BENCHMARKS.md, start-up). Except where per-trial CV folds may train at once
        (`search.cv.parallel`), each fold on its own worker of one Train run."""
        res, cv = self.resources, self.search.cv
        if res.inline is None:
            folds_at_once = cv is not None and cv.mode == "per_trial" and cv.parallel is not False and (self.data.folds or 0) >= 2
            res.inline = res.workers == 1 and not folds_at_once
        return self


def _model_class(annotation: Any) -> Optional[type[BaseModel]]:
    """The pydantic model inside `annotation` (unwrapping Optional), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_class(arg)
        if found is not None:
            return found
    return None


def field_names(model: type[BaseModel]) -> list[str]:
    """Keys a section accepts (aliases where a field has one)."""
    return [f.alias or name for name, f in model.model_fields.items()]


def _field(model: type[BaseModel], key: str):
    for name, f in model.model_fields.items():
        if key in (name, f.alias):
            return f
    return None


def section_at(path: str) -> Optional[type[BaseModel]]:
    """The model class that holds the keys under dotted `path` ('' for the root)."""
    model: Optional[type[BaseModel]] = SweepConfig
    for key in [k for k in path.split(".") if k]:
        f = _field(model, key) if model else None
        model = _model_class(f.annotation) if f else None
        if model is None:
            return None
    return model


def key_exists(path: str) -> bool:
    parent, _, key = path.rpartition(".")
    model = section_at(parent)
    if model is None:
        # inside a free-form mapping such as model.kwargs
        return _free_form(parent)
    return _field(model, key) is not None


def _free_form(path: str) -> bool:
    parent, _, key = path.rpartition(".")
    model = section_at(parent)
    if model is None:
        return bool(parent) and _free_form(parent)
    f = _field(model, key)
    return f is not None and _model_class(f.annotation) is None and typing.get_origin(f.annotation) is dict


def is_searchable(path: str) -> bool:
    """Whether a search domain may stand at dotted `path`."""
    model: Optional[type[BaseModel]] = SweepConfig
    for key in path.split("."):
        if model is None:
            return True  # inside a free-form mapping (model.kwargs): searchable like its parent
        extra = model.model_config.get("json_schema_extra") or {}
        if isinstance(extra, dict) and extra.get(SEARCHABLE) is False:
            return False
        f = _field(model, key)
        if f is None:
            return False
        fextra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        if fextra.get(SEARCHABLE) is False:
            return False
        model = _model_class(f.annotation)
    return True
