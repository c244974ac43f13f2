"""Train/validation splits: a holdout or one fold of k, by `data.strategy`.

The splitters are scikit-learn's (and iterative-stratification's for
multi-label data); each strategy registers how it makes k folds and how it
makes a holdout, and this module turns a splitter that cannot work on the
data into a `DataError` that says why. Every split is a function of the data
and `data.seed` alone, so all trials of a sweep see the same split.

- stratified             class proportions kept in every part (multi-label
                         data: as multilabel_stratified)
- multilabel_stratified  iterative stratification of label combinations
- group                  no group id (`data.group_col`) in two parts; the
                         holdout fraction counts groups, not samples
- plain                  shuffled, ignoring labels
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

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


STRATEGIES: Registry[type] = Registry("split strategy")


def _check_enough(samples: Samples, folds: int) -> None:
    if len(samples) < folds:
        raise DataError(f"{folds} folds need at least {folds} samples, the data has {len(samples)}", path="data.folds")


def _check_class_sizes(samples: Samples, needed: int, what: str, key: str = "data.folds") -> None:
    for c, n in enumerate(samples.class_counts()):
        if n == 0:
            raise DataError(f"class {samples.classes[c]!r} has no samples", path="data")
        if n < needed:
            raise DataError(f"a {what} needs >= {needed} samples per class; class {samples.classes[c]!r} has {n}", path=key)


def _one_hot(samples: Samples) -> np.ndarray:
    return samples.labels if samples.multilabel else np.eye(samples.num_classes)[samples.labels]


@STRATEGIES.register("multilabel_stratified")
class MultilabelStratified:
    @staticmethod
    def folds(cfg: DataConfig, samples: Samples) -> Iterable:
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

        _check_enough(samples, cfg.folds)
        return MultilabelStratifiedKFold(n_splits=cfg.folds, shuffle=True, random_state=cfg.seed).split(np.zeros(len(samples)), _one_hot(samples))

    @staticmethod
    def holdout(cfg: DataConfig, samples: Samples) -> tuple:
        from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

        splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=cfg.val_fraction, random_state=cfg.seed)
        return next(splitter.split(np.zeros(len(samples)), _one_hot(samples)))


@STRATEGIES.register("stratified")
class Stratified:
    @staticmethod
    def folds(cfg: DataConfig, samples: Samples) -> Iterable:
        from sklearn.model_selection import StratifiedKFold

        if samples.multilabel:
            return MultilabelStratified.folds(cfg, samples)
        _check_class_sizes(samples, cfg.folds, f"stratified split into {cfg.folds} folds")
        return StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(np.zeros(len(samples)), samples.labels)

    @staticmethod
    def holdout(cfg: DataConfig, samples: Samples) -> tuple:
        from sklearn.model_selection import train_test_split

        if samples.multilabel:
            return MultilabelStratified.holdout(cfg, samples)
        _check_class_sizes(samples, 2, "stratified holdout", key="data.strategy")
        n_val = math.ceil(cfg.val_fraction * len(samples))
        for part, n in (("validation", n_val), ("training", len(samples) - n_val)):
            if n < samples.num_classes:
                raise DataError(
                    f"{cfg.val_fraction} of {len(samples)} samples leaves {n} for {part}, fewer than the {samples.num_classes} classes a stratified holdout must place there",
                    path="data.val_fraction",
                )
        idx = np.arange(len(samples))
        return train_test_split(idx, test_size=n_val, stratify=samples.labels, random_state=cfg.seed)


def _groups(cfg: DataConfig, samples: Samples, parts: int) -> np.ndarray:
    if samples.groups is None:
        raise DataError("strategy 'group' needs group ids: set data.group_col to the column that holds them", path="data.strategy")
    n_groups = len(np.unique(samples.groups))
    if n_groups < parts:
        raise DataError(f"{parts} parts need at least {parts} groups, the data has {n_groups}", path="data.folds" if cfg.folds else "data.group_col")
    return samples.groups


@STRATEGIES.register("group")
class Group:
    @staticmethod
    def folds(cfg: DataConfig, samples: Samples) -> Iterable:
        from sklearn.model_selection import GroupKFold

        groups = _groups(cfg, samples, cfg.folds)
        return GroupKFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(np.zeros(len(samples)), groups=groups)

    @staticmethod
    def holdout(cfg: DataConfig, samples: Samples) -> tuple:
        from sklearn.model_selection import GroupShuffleSplit

        groups = _groups(cfg, samples, 2)
        splitter = GroupShuffleSplit(n_splits=1, test_size=cfg.val_fraction, random_state=cfg.seed)
        return next(splitter.split(np.zeros(len(samples)), groups=groups))


@STRATEGIES.register("plain")
class Plain:
    @staticmethod
    def folds(cfg: DataConfig, samples: Samples) -> Iterable:
        from sklearn.model_selection import KFold

        _check_enough(samples, cfg.folds)
        return KFold(cfg.folds, shuffle=True, random_state=cfg.seed).split(np.zeros(len(samples)))

    @staticmethod
    def holdout(cfg: DataConfig, samples: Samples) -> tuple:
        from sklearn.model_selection import train_test_split

        return train_test_split(np.arange(len(samples)), test_size=cfg.val_fraction, random_state=cfg.seed)


def holdout(cfg: DataConfig, samples: Samples) -> Split:
    """The source's own validation set when it fixes one (digits_lt), else a
    `data.val_fraction` holdout by the strategy."""
    if samples.preset_val is not None:
        val = np.sort(samples.preset_val)
        return Split(np.setdiff1d(np.arange(len(samples)), val), val)
    tr, va = STRATEGIES.get(cfg.strategy, path="data.strategy").holdout(cfg, samples)
    return Split(np.sort(tr), np.sort(va))


def kfold(cfg: DataConfig, samples: Samples, fold: int) -> Split:
    folds = list(STRATEGIES.get(cfg.strategy, path="data.strategy").folds(cfg, samples))
    tr, va = folds[fold]
    return Split(np.sort(tr), np.sort(va))


def make_split(cfg: DataConfig, samples: Samples, fold: int | None = None) -> Split:
    """The split a trial trains on: fold `fold` (default `data.fold`) of k, else the holdout."""
    if cfg.folds:
        return kfold(cfg, samples, cfg.fold if fold is None else fold)
    return holdout(cfg, samples)
