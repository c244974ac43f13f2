"""Open a sweep's data before any trial starts and refuse what cannot train.

Every sample is decoded (in threads), labels are checked against the declared
classes by the source, the split is made, and the channel count is compared
with the model's; each problem is a `DataError` naming the sample or key.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

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
    image_shape: tuple

    def __str__(self) -> str:
        return (f"{self.samples} samples, {self.classes} classes ({self.task}), "
                f"{self.train} train / {self.val} val, images {'x'.join(map(str, self.image_shape))}")


def _decode_all(samples: Samples, expected_shape: tuple) -> None:
    store = samples.images

    def one(i: int) -> None:
        image = store.load(i)
        if image.ndim != 3 or image.shape[2] != expected_shape[2]:
            raise DataError(f"has {image.shape[2] if image.ndim == 3 else 1} channels, expected {expected_shape[2]}", source=store.name(i))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(len(store))))


def check_data(cfg: SweepConfig, *, decode: bool = True) -> DataSummary:
    samples = load_samples(cfg.data)
    if len(samples) == 0:
        raise DataError("no samples", path="data")
    counts = samples.class_counts()
    empty = [samples.classes[c] for c, n in enumerate(counts) if n == 0]
    if empty:
        raise DataError(f"class {empty[0]!r} has no samples", path="data")
    first = samples.images.load(0)
    if decode:
        _decode_all(samples, first.shape)
    in_chans = cfg.model.in_chans or samples.in_chans
    if first.shape[2] != in_chans:
        raise DataError(f"model.in_chans is {in_chans} but the images have {first.shape[2]} channels", source=samples.images.name(0))
    folds = range(cfg.data.folds) if cfg.data.folds else [None]
    splits = [make_split(cfg.data, samples, f) for f in folds]
    split = splits[cfg.data.fold if cfg.data.folds else 0]
    return DataSummary(len(samples), samples.num_classes, samples.task, len(split.train), len(split.val), tuple(first.shape))


def write_preview(cfg: SweepConfig, path: str | Path, n: int = 16) -> Path:
    """A grid of `n` augmented training samples as a PNG (normalization undone)."""
    from PIL import Image

    from trainables.augment import build_transforms

    samples = load_samples(cfg.data)
    first = samples.images.load(0)
    train_tf, _ = build_transforms(cfg.augment, first.shape[0], first.shape[1], first.shape[2])
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
