"""Open a sweep's data before any trial starts and refuse what cannot train.

Every sample is decoded (in threads), labels are checked against the declared
classes by the source, channel counts and sizes are compared across samples
and with the model's, and every fold's split is made; each problem is a
`DataError` naming the file, row or key (`raysweep validate --data`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from raysweep.config.schema import SweepConfig
from raysweep.errors import DataError
from trainables.data.samples import Samples
from trainables.data.sources import load_samples
from trainables.data.splits import make_split


@dataclass(frozen=True)
class DataSummary:
    samples: int
    classes: int
    task: str
    train: int
    val: int
    image_shape: tuple  # the first sample's (H, W, C) as stored
    model_input: tuple = ()  # what validation gives the network of it (C, H, W), before model.input_size
    test: Optional[int] = None  # samples of the held-out test split, read only for the final evaluation

    def __str__(self) -> str:
        seen = f", resized to {self.model_input[1]}x{self.model_input[2]}" if self.model_input and self.model_input[1:] != self.image_shape[:2] else ""
        test = f" / {self.test} test (held out)" if self.test is not None else ""
        return (f"{self.samples} samples, {self.classes} classes ({self.task}), "
                f"{self.train} train / {self.val} val{test}, images {'x'.join(map(str, self.image_shape))}{seen}")


def _decode_all(samples: Samples) -> list[tuple]:
    """Every sample's shape; decoding in threads (PIL releases the GIL)."""
    store = samples.images
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 1)) as pool:
        return list(pool.map(lambda i: store.load(i).shape, range(len(store))))


def _check_channels(cfg: SweepConfig, samples: Samples, shapes: list[tuple]) -> None:
    name = samples.images.name
    for i, shape in enumerate(shapes):
        if shape[2] != shapes[0][2]:
            raise DataError(
                f"has {_channels(shape[2])} but the first image ({name(0)}) has {shapes[0][2]}; set data.image_mode (L, RGB or RGBA) to convert every file",
                source=name(i),
            )
    if cfg.model.in_chans is not None and cfg.model.in_chans != shapes[0][2]:
        raise DataError(f"is {cfg.model.in_chans} but the images have {_channels(shapes[0][2])} ({name(0)})", path="model.in_chans")


def _channels(n: int) -> str:
    return f"{n} channel" if n == 1 else f"{n} channels"


def _check_sizes(samples: Samples, shapes: list[tuple], transforms) -> tuple:
    """What the model sees of the first sample (C, H, W); images of several sizes are
    fine only if the transforms bring them to one (`augment.resize`, on by default)."""
    seen = tuple(transforms[1](samples.images.load(0)).shape)
    other = next((i for i, s in enumerate(shapes) if s[:2] != shapes[0][:2]), None)
    if other is None:
        return seen
    h, w, _ = shapes[0]
    first, second = samples.images.load(0), samples.images.load(other)
    for tf in transforms:
        if tuple(tf(first).shape) != tuple(tf(second).shape):
            raise DataError(
                f"is {shapes[other][0]}x{shapes[other][1]} but {samples.images.name(0)} is {h}x{w}; "
                "a batch needs one size: set augment.resize.mode (resize, center_crop, letterbox) rather than none",
                source=samples.images.name(other),
            )
    return seen


def check_data(cfg: SweepConfig, *, decode: bool = True) -> DataSummary:
    """Open the data as a trial would and refuse what cannot train. `decode`: read every
    sample (missing and corrupt files, channel counts, sizes), not only the first."""
    samples = load_samples(cfg.data)
    if len(samples) == 0:
        raise DataError("no samples", path="data")
    counts = samples.class_counts()
    empty = [samples.classes[c] for c, n in enumerate(counts) if n == 0]
    if empty:
        raise DataError(f"class {empty[0]!r} has no samples", path="data")
    from trainables.augment import sample_transforms

    transforms = sample_transforms(cfg, samples)  # first: a file store then decodes as a trial will
    shapes = _decode_all(samples) if decode else [samples.images.load(0).shape]
    _check_channels(cfg, samples, shapes)
    seen = _check_sizes(samples, shapes, transforms)
    folds = range(cfg.data.folds) if cfg.data.folds else [None]
    splits = [make_split(cfg.data, samples, f) for f in folds]
    split = splits[cfg.data.fold if cfg.data.folds else 0]
    test = _test_samples(cfg, samples)
    return DataSummary(len(samples), samples.num_classes, samples.task, len(split.train), len(split.val), _file_shape(samples), seen, test)


def _test_samples(cfg: SweepConfig, samples: Samples) -> Optional[int]:
    """Open the held-out test split now, so a missing or unreadable one is refused before any trial."""
    from trainables.heldout import load_test_samples

    if not cfg.data.has_test_split:
        return None
    test = load_test_samples(cfg.data, list(samples.classes))
    if len(test) == 0:
        raise DataError("the test split has no samples", path="data.test_path" if cfg.data.test_path else "data.official_test")
    return len(test)


def _file_shape(samples: Samples) -> tuple:
    """The first sample's shape as stored, not as a trial decodes it (a JPEG at reduced scale)."""
    store = samples.images
    decode = getattr(store, "decode", None)
    if decode is None:
        return tuple(store.load(0).shape)
    store.decode = None
    try:
        return tuple(store.load(0).shape)
    finally:
        store.decode = decode


def write_preview(cfg: SweepConfig, path: str | Path, n: int = 16, samples: Optional[Samples] = None) -> Path:
    """A grid of `n` augmented training samples as a PNG (normalization undone), resized as
    the model will get them; pass the `samples` already loaded to spare reading the data twice."""
    from PIL import Image

    from trainables.augment import sample_transforms

    samples = samples if samples is not None else load_samples(cfg.data)
    train_tf, _ = sample_transforms(cfg, samples)
    train_tf.reseed(cfg.train.seed)
    rng = np.random.default_rng(cfg.train.seed)
    tiles = []
    for i in rng.choice(len(samples), size=min(n, len(samples)), replace=False):
        t = train_tf(samples.images.load(int(i))).numpy()  # C, H, W normalized
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        img = (t.transpose(1, 2, 0) * 255).astype(np.uint8)
        img = img[..., :3] if img.shape[2] >= 3 else np.repeat(img[..., :1], 3, axis=2)
        tiles.append(img)
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    cols = int(np.ceil(np.sqrt(len(tiles))))
    rows = int(np.ceil(len(tiles) / cols))
    grid = np.zeros((rows * h, cols * w, 3), np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        grid[r * h : r * h + t.shape[0], c * w : c * w + t.shape[1]] = t
    scale = max(1, 128 // max(h, w))
    out = Path(path)
    Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST).save(out)
    return out
