"""Train/validation splits: a stratified holdout or one fold of k.

The splitters are scikit-learn's (and iterative-stratification's for
multi-label data); this module only picks one from `data.strategy` and turns
a splitter that cannot work on the data into a `DataError` that says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from raysweep.config.sections.data import DataConfig
from raysweep.errors import DataError
from raysweep.registry import Registry
from trainables.data.samples import Samples


@dataclass(frozen=True)
class Split:
    train: np.ndarray
    val: np.ndarray

    def assignment(self, n: int) -> np.ndarray:
        """Per sample: 0 train, 1 validation, -1 unused."""
        out = np.full(n, -1, dtype=np.int8)
        out[self.train] = 0
        out[self.val] = 1
        return out


KFold = Callable[[DataConfig, Samples], object]
KFOLDS: Registry[KFold] = Registry("split strategy")


@KFOLDS.register("stratified")
def _stratified(cfg: DataConfig, samples: Samples):
    from sklearn.model_selection import StratifiedKFold

    if samples.multilabel:
        return _multilabel(cfg, samples)
    _check_class_sizes(samples, cfg.folds, "stratified")
    return StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(np.zeros(len(samples)), samples.labels)


@KFOLDS.register("multilabel_stratified")
def _multilabel(cfg: DataConfig, samples: Samples):
    from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

    labels = samples.labels if samples.multilabel else np.eye(samples.num_classes)[samples.labels]
    return MultilabelStratifiedKFold(n_splits=cfg.folds, shuffle=True, random_state=cfg.seed).split(np.zeros(len(samples)), labels)


@KFOLDS.register("group")
def _group(cfg: DataConfig, samples: Samples):
    from sklearn.model_selection import GroupKFold

    if samples.groups is None:
        raise DataError("strategy 'group' needs group ids (data.group_col)", path="data.strategy")
    n_groups = len(np.unique(samples.groups))
    if n_groups < cfg.folds:
        raise DataError(f"{cfg.folds} folds need at least {cfg.folds} groups, the data has {n_groups}", path="data.folds")
    return GroupKFold(cfg.folds).split(np.zeros(len(samples)), groups=samples.groups)


@KFOLDS.register("plain")
def _plain(cfg: DataConfig, samples: Samples):
    from sklearn.model_selection import KFold

    return KFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(np.zeros(len(samples)))


def _check_class_sizes(samples: Samples, needed: int, what: str) -> None:
    counts = samples.class_counts()
    for c, n in enumerate(counts):
        if n == 0:
            raise DataError(f"class {samples.classes[c]!r} has no samples", path="data")
        if n < needed:
            raise DataError(
                f"a {what} split into {needed} folds needs >= {needed} samples per class; class {samples.classes[c]!r} has {n}",
                path="data.folds",
            )


def holdout(cfg: DataConfig, samples: Samples) -> Split:
    if samples.preset_val is not None:
        val = np.sort(samples.preset_val)
        return Split(np.setdiff1d(np.arange(len(samples)), val), val)
    idx = np.arange(len(samples))
    if cfg.strategy == "plain":
        from sklearn.model_selection import train_test_split

        tr, va = train_test_split(idx, test_size=cfg.val_fraction, random_state=cfg.seed)
    elif samples.multilabel or cfg.strategy == "multilabel_stratified":
        from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

        labels = samples.labels if samples.multilabel else np.eye(samples.num_classes)[samples.labels]
        splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=cfg.val_fraction, random_state=cfg.seed)
        tr, va = next(splitter.split(idx, labels))
    else:
        from sklearn.model_selection import train_test_split

        _check_class_sizes(samples, 2, "stratified holdout")
        tr, va = train_test_split(idx, test_size=cfg.val_fraction, stratify=samples.labels, random_state=cfg.seed)
    return Split(np.sort(tr), np.sort(va))


def kfold(cfg: DataConfig, samples: Samples, fold: int) -> Split:
    folds = list(KFOLDS.get(cfg.strategy, path="data.strategy")(cfg, samples))
    tr, va = folds[fold]
    return Split(np.sort(tr), np.sort(va))


def make_split(cfg: DataConfig, samples: Samples, fold: int | None = None) -> Split:
    """The split a trial trains on: fold `fold` (default `data.fold`) of k, else the holdout."""
    if cfg.folds:
        return kfold(cfg, samples, cfg.fold if fold is None else fold)
    return holdout(cfg, samples)
