"""What a data source hands to the trainer: images, labels and their classes.

Images are read lazily through an `ImageStore` (one per source layout); every
store yields HWC uint8 arrays so that albumentations and the normalization see
the same kind of input whatever the source. Labels are class indices (N,) for
binary and multi-class tasks, a float multi-hot matrix (N, C) for multi-label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol

import numpy as np

from raysweep.errors import DataError


class ImageStore(Protocol):
    def __len__(self) -> int: ...

    def load(self, i: int) -> np.ndarray:
        """Sample `i` as an HWC uint8 array; raise DataError naming the sample."""

    def name(self, i: int) -> str:
        """How a user finds sample `i` (a file path, a row number)."""


@dataclass
class ArrayStore:
    """Images already in memory as an (N, H, W, C) uint8 array.

    Sample `i` is named `f"{label} {i + first}"`: `first` lets a table read
    from a CSV file name its samples by line (the header being line 1).
    """

    images: np.ndarray
    label: str = "row"
    first: int = 0
    one_size = True  # every sample has the same size (`augment.resize: auto` leaves them)

    def __len__(self) -> int:
        return len(self.images)

    def load(self, i: int) -> np.ndarray:
        return self.images[i]

    def name(self, i: int) -> str:
        return f"{self.label} {i + self.first}"


@dataclass
class Samples:
    images: ImageStore
    labels: np.ndarray
    classes: list[str]
    task: str  # binary | multiclass | multilabel
    groups: Optional[np.ndarray] = None
    in_chans: int = 3
    preset_val: Optional[np.ndarray] = None  # a validation set the source fixes itself (digits_lt)
    # the stored value of a full-intensity pixel, which `to_uint8` made 255 (digits: 16): the
    # deployed model takes pixels on this scale (`trainables.deploy`)
    pixel_max: float = 255.0

    def __post_init__(self) -> None:
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def multilabel(self) -> bool:
        return self.task == "multilabel"

    def class_counts(self, indices: Optional[np.ndarray] = None) -> np.ndarray:
        """Samples per class among `indices` (all when None)."""
        labels = self.labels if indices is None else self.labels[indices]
        if self.multilabel:
            return labels.sum(axis=0).astype(np.int64)
        return np.bincount(labels, minlength=self.num_classes).astype(np.int64)

    def stratify_labels(self) -> np.ndarray:
        return self.labels


def full_scale(images: np.ndarray) -> float:
    """The stored value `to_uint8` makes 255: 65535 for uint16, 1 for booleans and for
    floats whose maximum is at most 1, else 255."""
    if images.dtype == np.uint16:
        return 65535.0
    if images.dtype == np.bool_ or (np.issubdtype(images.dtype, np.floating) and images.size and float(images.max()) <= 1.0):
        return 1.0
    return 255.0


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Pixels as uint8, whatever they were stored as.

    uint16 is 16-bit data, scaled by 1/257 (65535 -> 255); other integers are
    0..255 already (clipped); floats are [0, 1] when the array's maximum is at
    most 1 (scaled by 255), else 0..255 (rounded and clipped). Only floats look
    at the values, and only to tell [0, 1] from 0..255 (`full_scale`).
    """
    if images.dtype == np.uint8:
        return images
    if images.dtype == np.bool_:
        return images.astype(np.uint8) * 255
    scale = 255.0 / full_scale(images)
    return np.clip(np.rint(images.astype(np.float32) * scale), 0, 255).astype(np.uint8)


def infer_task(declared: str, labels: np.ndarray, num_classes: int) -> str:
    """`data.task`, or the task the labels imply when it is `auto`."""
    if declared == "binary" and num_classes != 2:
        raise DataError(f"is 'binary' but the data has {num_classes} classes", path="data.task")
    if declared != "auto":
        return declared
    if labels.ndim == 2:
        return "multilabel"
    return "binary" if num_classes == 2 else "multiclass"
