"""The names of the metrics a trainer reports each epoch, known without torch or scikit-learn:
`raysweep validate` checks `search.metric` against them before anything heavy is imported.
`trainables.metrics` computes the figures under these names."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Optional, Sequence

if TYPE_CHECKING:
    from raysweep.config.schema import SweepConfig

SCALARS = ("accuracy", "macro_f1", "micro_f1", "weighted_f1", "balanced_accuracy")
RANKING = ("auroc", "map")  # binary and multi-label tasks
PER_CLASS = ("precision", "recall", "f1")  # `<name>/<class>`, the class's name through `metric_key`
TASKS = ("binary", "multiclass", "multilabel")

# scalar metrics that get a fold mean and standard deviation under cross-validation
CV_SCALARS = ("loss", "accuracy", "macro_f1", "micro_f1", "weighted_f1", "balanced_accuracy", "auroc", "map")
EPOCH_KEYS = ("epoch", "train/loss", "lr", "epoch_time_s", "images_per_s")  # beside val/*, every epoch


def metric_names(task: str, classes: Optional[Sequence[str]], *, tuned_threshold: bool = False) -> list[str]:
    """The names `classification_metrics` may return for `task`; the per-class ones for
    `classes` (none when the classes are not known yet)."""
    names = list(SCALARS)
    if task in ("binary", "multilabel"):
        names += RANKING
    if task == "multilabel" and tuned_threshold:
        names.append("threshold_mean")
    return names + [f"{kind}/{metric_key(c)}" for kind in PER_CLASS for c in (classes or ())]


def metric_key(name: str) -> str:
    """A class name made safe for MLflow and Tune metric keys."""
    return re.sub(r"[^A-Za-z0-9_.\- ]", "_", str(name))


def per_trial_cv(cfg: "SweepConfig") -> bool:
    return cfg.search.cv is not None and cfg.search.cv.mode == "per_trial"


def reported_metrics(cfg: "SweepConfig", task: str, classes: Optional[Sequence[str]]) -> set[str]:
    """Every key a trainer of `cfg` reports each epoch, for data of `task` ("auto": any task)
    and `classes` (None: not known yet, and then no per-class key is listed)."""
    val = {"loss"}
    for t in TASKS if task == "auto" else (task,):
        val.update(metric_names(t, classes, tuned_threshold=cfg.train.tune_threshold))
    names = {*EPOCH_KEYS, *(f"val/{n}" for n in val)}
    if per_trial_cv(cfg):
        names.update(f"val/{n}_std" for n in CV_SCALARS if n in val)
        names.update(f"fold{k}/val/{n}" for k in range(cfg.data.folds) for n in CV_SCALARS if n in val)
    return names
