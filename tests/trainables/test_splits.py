"""Splits: proportions, determinism by data.seed, partitions, groups, and refusals."""

import numpy as np
import pytest

from raysweep.config.sections.data import DataConfig
from raysweep.errors import DataError
from tests.trainables import data_factory as make
from trainables.data.samples import ArrayStore, Samples
from trainables.data.sources import load_samples
from trainables.data.splits import STRATEGIES, make_split


def samples(labels, *, groups=None, classes=None) -> Samples:
    labels = np.asarray(labels)
    multilabel = labels.ndim == 2
    n_classes = labels.shape[1] if multilabel else int(labels.max()) + 1
    images = np.zeros((len(labels), 2, 2, 1), np.uint8)
    return Samples(
        ArrayStore(images), labels.astype(np.float32 if multilabel else np.int64), classes or [f"c{k}" for k in range(n_classes)],
        "multilabel" if multilabel else "multiclass", groups=None if groups is None else np.asarray(groups),
    )


def imbalanced() -> Samples:
    return samples(np.repeat([0, 1, 2], [60, 30, 15]))


def split_error(cfg: DataConfig, s: Samples, fold=None) -> str:
    with pytest.raises(DataError) as info:
        make_split(cfg, s, fold)
    return info.value.line()


def assert_partition(split, n):
    assert len(np.intersect1d(split.train, split.val)) == 0
    assert np.array_equal(np.union1d(split.train, split.val), np.arange(n))


def test_every_strategy_is_registered():
    assert STRATEGIES.names() == ["group", "multilabel_stratified", "plain", "stratified"]


@pytest.mark.parametrize("strategy", ["stratified", "multilabel_stratified", "plain", "group"])
def test_holdout_is_disjoint_covers_everything_and_follows_data_seed(strategy):
    s = imbalanced()
    s.groups = np.arange(len(s)) // 3
    cfg = DataConfig(strategy=strategy, val_fraction=0.2, seed=1)
    a, b = make_split(cfg, s), make_split(cfg, s)
    assert_partition(a, len(s))
    assert np.array_equal(a.val, b.val)
    other = make_split(DataConfig(strategy=strategy, val_fraction=0.2, seed=2), s)
    assert not np.array_equal(a.val, other.val)


def test_stratified_holdout_keeps_class_proportions():
    s = imbalanced()
    split = make_split(DataConfig(val_fraction=0.2), s)
    assert s.class_counts(split.val).tolist() == [12, 6, 3]
    assert s.class_counts(split.train).tolist() == [48, 24, 12]


@pytest.mark.parametrize("strategy", ["stratified", "multilabel_stratified", "plain", "group"])
def test_folds_partition_the_data(strategy):
    s = imbalanced()
    s.groups = np.arange(len(s)) // 5
    cfg = DataConfig(strategy=strategy, folds=5, seed=3)
    folds = [make_split(cfg, s, k) for k in range(5)]
    for split in folds:
        assert_partition(split, len(s))
    vals = np.concatenate([f.val for f in folds])
    assert np.array_equal(np.sort(vals), np.arange(len(s)))  # every sample validates exactly once
    again = [make_split(cfg, s, k) for k in range(5)]
    assert all(np.array_equal(f.val, g.val) for f, g in zip(folds, again))
    reseeded = make_split(DataConfig(strategy=strategy, folds=5, seed=4), s, 0)
    assert not np.array_equal(folds[0].val, reseeded.val)


def test_stratified_folds_keep_class_proportions():
    s = imbalanced()
    for k in range(5):
        split = make_split(DataConfig(folds=5, fold=k), s)
        assert s.class_counts(split.val).tolist() == [12, 6, 3]


def test_data_fold_picks_the_fold():
    s = imbalanced()
    assert np.array_equal(make_split(DataConfig(folds=3, fold=2), s).val, make_split(DataConfig(folds=3), s, 2).val)


def test_more_folds_than_the_smallest_class_names_the_class():
    s = samples(np.repeat([0, 1, 2], [10, 4, 10]), classes=["cat", "dog", "eel"])
    assert split_error(DataConfig(folds=5), s) == "data.folds: a stratified split into 5 folds needs >= 5 samples per class; class 'dog' has 4"


def test_holdout_refusals():
    one = samples(np.repeat([0, 1], [10, 1]), classes=["a", "b"])
    assert split_error(DataConfig(), one) == "data.strategy: a stratified holdout needs >= 2 samples per class; class 'b' has 1"
    many = samples(np.repeat(np.arange(10), 2))
    assert split_error(DataConfig(val_fraction=0.25), many) == (
        "data.val_fraction: 0.25 of 20 samples leaves 5 for validation, fewer than the 10 classes a stratified holdout must place there"
    )
    assert split_error(DataConfig(folds=30, strategy="plain"), many) == "data.folds: 30 folds need at least 30 samples, the data has 20"


def test_group_splits_never_split_a_group():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 12, size=80)
    s = samples(rng.integers(0, 2, size=80), groups=groups)
    splits = [make_split(DataConfig(strategy="group", folds=4, seed=5), s, k) for k in range(4)]
    splits.append(make_split(DataConfig(strategy="group", val_fraction=0.25, seed=5), s))
    for split in splits:
        assert set(groups[split.train]).isdisjoint(groups[split.val])
        assert_partition(split, 80)


def test_group_split_refusals():
    s = samples([0, 1] * 5)
    assert split_error(DataConfig(strategy="group", folds=2), s) == (
        "data.strategy: strategy 'group' needs group ids: set data.group_col to the column that holds them"
    )
    s.groups = np.array(["a", "b", "c"] * 3 + ["a"])
    assert split_error(DataConfig(strategy="group", folds=4), s) == "data.folds: 4 parts need at least 4 groups, the data has 3"


def test_group_split_reads_groups_from_the_manifest(tmp_path):
    rows = [(f"img/{k}.png", "ab"[k % 2], f"patient{k // 4}") for k in range(16)]
    path = make.csv_manifest(tmp_path, rows, header=("image", "label", "patient"), size=4)
    cfg = DataConfig(kind="csv", path=str(path), group_col="patient", strategy="group", folds=2)
    s = load_samples(cfg)
    split = make_split(cfg, s, 0)
    assert set(s.groups[split.train]).isdisjoint(s.groups[split.val])
    assert len(split.val) == 8


def test_multilabel_stratified_folds_put_every_label_in_every_fold():
    rng = np.random.default_rng(0)
    labels = (rng.random((120, 4)) < np.array([0.5, 0.3, 0.1, 0.05])).astype(np.float32)
    labels[labels.sum(1) == 0, 0] = 1
    s = samples(labels)
    totals = labels.sum(0)
    for k in range(3):
        split = make_split(DataConfig(folds=3, fold=k, seed=0), s)  # 'stratified' on multi-label data stratifies iteratively
        assert_partition(split, 120)
        per_label = labels[split.val].sum(0)
        assert np.all(np.abs(per_label - totals / 3) <= 1.5), (per_label, totals / 3)


def test_a_source_that_fixes_its_validation_set_keeps_it():
    s = load_samples(DataConfig(kind="digits_lt", imbalance_ratio=10))
    split = make_split(DataConfig(kind="digits_lt", strategy="plain", seed=9), s)
    assert np.array_equal(split.val, np.sort(s.preset_val))
    assert_partition(split, len(s))
