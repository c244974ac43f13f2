"""The `torchvision` source: a torchvision classification dataset's training split.

`data.name` is the dataset class (CIFAR10, CIFAR100, MNIST, SVHN, ...; any
case), `data.root` where it lies, and `data.download: true` lets torchvision
fetch it there. Datasets that hold their images in memory (`data` with
`targets` or `labels`, as CIFAR and the MNIST family do) are used as arrays;
any other is read item by item. The validation set comes from
`data.val_fraction` or `data.folds` like any source's; the official test split
(`data.official_test`) is read only by `official_test`, at the end of a sweep.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from raysweep.config.sections.data import DataConfig
from raysweep.errors import ConfigError, DataError
from raysweep.registry import suggest
from trainables.data.labels import natural_sorted
from trainables.data.registry import register_source
from trainables.data.samples import ArrayStore, Samples, infer_task, to_uint8


def dataset_class(name: str) -> type:
    import torchvision.datasets as tvd

    table = {n: getattr(tvd, n) for n in dir(tvd) if isinstance(getattr(tvd, n), type) and issubclass(getattr(tvd, n), tvd.VisionDataset)}
    by_lower = {n.lower(): cls for n, cls in table.items()}
    if name.lower() not in by_lower:
        raise ConfigError(f"unknown torchvision dataset {name!r}{suggest(name, table)}", path="data.name")
    return by_lower[name.lower()]


def open_dataset(cfg: DataConfig, split: str = "train"):
    """The dataset's `split` ("train" or "test"), as torchvision names it (`train=` or `split=`)."""
    cls = dataset_class(cfg.name)
    params = inspect.signature(cls).parameters
    kwargs = {"train": split == "train"} if "train" in params else {"split": split} if "split" in params else {}
    if "download" in params:
        kwargs["download"] = cfg.download
    try:
        return cls(str(Path(cfg.root).expanduser()), **kwargs)
    except (TypeError, ValueError) as e:  # a required argument raysweep has no key for, or a split not named 'train'
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise ConfigError(f"torchvision.datasets.{cls.__name__} cannot be opened as ({shown}): {e}", path="data.name") from None
    except (RuntimeError, OSError) as e:
        if cfg.download:
            raise DataError(f"cannot download {cls.__name__} into {cfg.root}: {e}", path="data.root") from None
        raise not_found(cls, cfg, e) from None


def not_found(cls: type, cfg: DataConfig, error: Exception) -> DataError:
    """torchvision says 'not found or corrupted' for both: tell them apart by its folder,
    so files that are there but fail its checksum are not reported as missing."""
    folder = Path(cfg.root).expanduser() / getattr(cls, "base_folder", "")
    said = str(error).split(". ")[0].strip().rstrip(".")  # "Dataset not found or corrupted"
    if getattr(cls, "base_folder", None) and folder.is_dir() and any(folder.iterdir()):
        return DataError(
            f"{cls.__name__} files under {folder} are incomplete or fail torchvision's checksum ({said}): "
            "a file is missing, truncated or not the official release; set data.download: true to fetch them again",
            path="data.root")
    return DataError(f"no {cls.__name__} data under {cfg.root} (torchvision: {said}); set data.download: true or point data.root at it", path="data.root")


def hwc(images: np.ndarray) -> np.ndarray:
    """(N, H, W, C) uint8 from (N, H, W), (N, H, W, C) or (N, C, H, W) pixels."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    elif images.shape[1] in (1, 3) and images.shape[3] not in (1, 3, 4):
        images = images.transpose(0, 2, 3, 1)  # SVHN and STL10 store channels first
    return np.ascontiguousarray(to_uint8(images))


@dataclass
class DatasetStore:
    """Items of a torchvision dataset whose images are files read on demand."""

    dataset: object
    label: str

    def __len__(self) -> int:
        return len(self.dataset)

    def load(self, i: int) -> np.ndarray:
        image = self.dataset[i][0]
        if getattr(image, "mode", "L") not in ("L", "RGB"):  # a PIL image, as torchvision returns without a transform
            image = image.convert("L" if image.mode in ("1", "LA") else "RGB")
        return hwc(np.asarray(image)[None])[0]

    def name(self, i: int) -> str:
        return f"{self.label} item {i}"


def _targets(ds) -> np.ndarray:
    for attr in ("targets", "labels", "_labels"):
        value = getattr(ds, attr, None)
        if value is not None and len(value) == len(ds):
            return np.asarray(value)
    return np.asarray([ds[i][1] for i in range(len(ds))])


@register_source("torchvision", requires=("name", "root"))
def torchvision_dataset(cfg: DataConfig) -> Samples:
    """The training split of `torchvision.datasets.<data.name>` under `data.root`
    (downloaded there when `data.download` is true)."""
    return _samples(open_dataset(cfg), cfg)


def official_test(cfg: DataConfig) -> Samples:
    """The dataset's own test split (CIFAR-100's `test` file): for the final evaluation only."""
    return _samples(open_dataset(cfg, "test"), cfg)


def _samples(ds, cfg: DataConfig) -> Samples:
    targets = _targets(ds)
    names = list(getattr(ds, "classes", None) or [])
    if names and np.issubdtype(targets.dtype, np.integer) and targets.max() < len(names):
        classes, labels = [str(c) for c in names], targets.astype(np.int64)
    else:
        classes = natural_sorted(str(t) for t in targets)
        index = {c: k for k, c in enumerate(classes)}
        labels = np.array([index[str(t)] for t in targets], dtype=np.int64)
    data = getattr(ds, "data", None)
    label = f"{type(ds).__name__} ({cfg.root})"
    if data is not None and np.ndim(data) in (3, 4) and len(data) == len(ds):
        store = ArrayStore(hwc(data), f"{label} item")
    else:
        store = DatasetStore(ds, label)
    return Samples(store, labels, classes, infer_task(cfg.task, labels, len(classes)), in_chans=int(store.load(0).shape[2]))
