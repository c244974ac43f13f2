"""Data sources, by `data.kind`.

Each source is a function `DataConfig -> Samples` registered under its kind,
with the `data` keys it needs. Adding a source is one decorated function.

- digits       scikit-learn's bundled 8x8 digits (1797 images, 10 classes)
- digits_lt    digits with a long-tailed training set (LDAM's exponential
               profile, `imbalance_ratio`) and a balanced validation set
- synthetic    class prototypes plus noise, of any shape and class count

and, from files (each module registers its own on import):

- image_folder   a sub-folder of images per class           (`files.py`)
- csv            a CSV manifest of image paths and labels   (`files.py`)
- channel_files  one grayscale file per channel per sample  (`files.py`)
- pixel_table    flattened pixel rows: CSV, Parquet, .npz   (`tables.py`)
- torchvision    a torchvision dataset such as CIFAR100     (`vision.py`)
"""

from __future__ import annotations

import numpy as np

from raysweep.config.sections.data import DataConfig
from trainables.data import files, tables, vision  # noqa: F401  (they register the file-backed sources)
from trainables.data.registry import SOURCES, Source, register_source, required_fields  # noqa: F401
from trainables.data.samples import ArrayStore, Samples, infer_task, to_uint8

DIGITS_MAX = 16.0  # scikit-learn's digits are counts of 0..16 set pixels per 4x4 block


def load_samples(cfg: DataConfig) -> Samples:
    return SOURCES.get(cfg.kind, path="data.kind").load(cfg)


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = to_uint8(d.images.astype(np.float32) / DIGITS_MAX)[..., None]  # (N, 8, 8, 1)
    return images, d.target.astype(np.int64)


@register_source("digits")
def digits(cfg: DataConfig) -> Samples:
    images, labels = _digits_arrays()
    classes = [str(c) for c in range(10)]
    return Samples(ArrayStore(images, "digit"), labels, classes, infer_task(cfg.task, labels, 10), in_chans=1, pixel_max=DIGITS_MAX)


def long_tail_counts(n_max: int, num_classes: int, ratio: float) -> np.ndarray:
    """LDAM's exponential profile: n_c = n_max * ratio^(-c / (C - 1)), at least 1."""
    c = np.arange(num_classes)
    return np.maximum(1, np.floor(n_max * ratio ** (-c / (num_classes - 1)))).astype(np.int64)


@register_source("digits_lt")
def digits_lt(cfg: DataConfig) -> Samples:
    """Long-tailed digits: class 0 keeps its whole training pool, class 9 one
    `imbalance_ratio`-th of it; validation stays balanced (as in the LDAM
    paper, whose test sets are balanced) so macro F1 measures every class."""
    from sklearn.model_selection import train_test_split

    images, labels = _digits_arrays()
    idx = np.arange(len(labels))
    pool, val = train_test_split(idx, test_size=cfg.val_fraction, stratify=labels, random_state=cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n_max = min(np.bincount(labels[pool]))
    keep = []
    for c, n in enumerate(long_tail_counts(n_max, 10, cfg.imbalance_ratio)):
        members = pool[labels[pool] == c]
        keep.append(rng.choice(members, size=n, replace=False))
    train = np.sort(np.concatenate(keep))
    chosen = np.concatenate([train, np.sort(val)])
    return Samples(
        ArrayStore(images[chosen], "digit"), labels[chosen], [str(c) for c in range(10)],
        infer_task(cfg.task, labels, 10), in_chans=1, preset_val=np.arange(len(train), len(chosen)), pixel_max=DIGITS_MAX,
    )


def _gratings(num_classes: int, h: int, w: int, c: int, rng: np.random.Generator) -> np.ndarray:
    """One prototype per class: a sinusoidal grating whose orientation and frequency
    identify the class (a texture, so pooled conv features can tell classes apart)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    protos = np.empty((num_classes, h, w, c), np.float32)
    for k in range(num_classes):
        theta = np.pi * k / num_classes
        freq = (1.5 + (k % 3)) / max(h, w)
        for ch in range(c):
            phase = rng.uniform(0, 2 * np.pi)
            protos[k, :, :, ch] = 127.5 + 100 * np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)) + phase)
    return protos


@register_source("synthetic")
def synthetic(cfg: DataConfig) -> Samples:
    """Learnable random images of `shape` and `num_classes`: each sample is its class's
    prototype (multi-label: the mean of its classes') plus Gaussian noise."""
    rng = np.random.default_rng(cfg.seed)
    num_classes = cfg.num_classes or len(cfg.classes or []) or 4
    c, h, w = cfg.shape
    protos = _gratings(num_classes, h, w, c, rng)
    n = cfg.num_samples
    if cfg.task == "multilabel":
        labels = (rng.random((n, num_classes)) < 0.3).astype(np.float32)
        labels[np.arange(n), rng.integers(0, num_classes, n)] = 1.0
        base = (labels @ protos.reshape(num_classes, -1) / labels.sum(1, keepdims=True)).reshape(n, h, w, c)
    else:
        labels = np.arange(n) % num_classes
        rng.shuffle(labels)
        base = protos[labels]
    images = np.clip(base + rng.normal(0, 30, size=base.shape), 0, 255).astype(np.uint8)
    classes = cfg.classes or [str(i) for i in range(num_classes)]
    task = infer_task(cfg.task, labels, num_classes)
    return Samples(ArrayStore(images, "synthetic sample"), labels.astype(np.float32 if task == "multilabel" else np.int64), classes, task, in_chans=c)
