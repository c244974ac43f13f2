"""Tiny data sets on disk, in every layout the data sources read.

Each function writes into a directory it is given (a pytest `tmp_path`) and
returns what a sweep's `data` section needs to point at it. Pixels are drawn
from a seeded generator, so the same call writes the same files.

    root = image_folder(tmp_path, classes={"a": 3, "b": 2}, size=8, channels=3)
    path = csv_manifest(tmp_path, rows=[("x.png", "8 5 0"), ("y.png", "1")])
    path = pixel_table(tmp_path, n=12, shape=(4, 3, 3), fmt="parquet")
    root = channel_files(tmp_path, ids=["s1", "s2"], channels=["red", "green"])
    root = fake_cifar10(tmp_path, n=20, monkeypatch=monkeypatch)
    root = fake_cifar100(tmp_path, n_train=200, n_test=50, monkeypatch=monkeypatch)

and the layouts the reports' data ship in (`tests/trainables/test_layouts.py`):

    root = image_folder(tmp_path, {"a": 4, "b": 4}, size=[(40, 30), (24, 24), (18, 32)])
    path = pandas_pixel_table(tmp_path, n=12, shape=(4, 3, 3))          # to_csv() with its index
    x, y = split_pixel_files(tmp_path, n=12, shape=(4, 3, 3))           # X_train.csv, y_train.csv
    path, root = id_manifest(tmp_path, ids, labels, header=("image_id", "labels"), suffix=".jpg")
    path, root = hpa_channel_files(tmp_path, ids, labels, sizes=[...])  # Kaggle HPA 2018 / 2021

and, to read them back as a sweep would: `load(**data)` (the samples) and `error(**data)` (the
one-line `DataError` that bad data gives).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
from PIL import Image

_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def random_image(size: int | tuple[int, int] = 8, channels: int = 3, seed: int = 0) -> np.ndarray:
    """An HWC uint8 image (HW for one channel, as PIL writes grayscale)."""
    h, w = (size, size) if isinstance(size, int) else size
    pixels = np.random.default_rng(seed).integers(0, 256, size=(h, w, channels), dtype=np.uint8)
    return pixels[..., 0] if channels == 1 else pixels


def write_image(path: Path, size: int | tuple[int, int] = 8, channels: int = 3, seed: int = 0) -> Path:
    """A PNG (or any suffix PIL writes) of `channels` 1, 3 or 4."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(random_image(size, channels, seed), _MODES[channels]).save(path)
    return path


def image_folder(tmp: Path, classes: dict[str, int], size: int | tuple | list = 8, channels: int = 3, name: str = "images",
                 suffix: str = ".png") -> Path:
    """`tmp/name/<class>/<class>_<k><suffix>`, `classes[c]` images per class; returns the root.
    `size`: one size, or a list of sizes taken in turn (files of mixed sizes)."""
    root = tmp / name
    root.mkdir(parents=True, exist_ok=True)
    sizes = size if isinstance(size, list) else [size]
    seed = 0
    for cls, count in classes.items():
        (root / cls).mkdir(exist_ok=True)
        for k in range(count):
            write_image(root / cls / f"{cls}_{k}{suffix}", sizes[seed % len(sizes)], channels, seed)
            seed += 1
    return root


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence]) -> Path:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def csv_manifest(
    tmp: Path, rows: Sequence[tuple], *, header: Sequence[str] = ("image", "label"), name: str = "manifest.csv",
    images: bool = True, size: int = 8, channels: int = 3,
) -> Path:
    """A manifest CSV of `rows` (image path, label[, more columns]); with `images`,
    also writes each listed image (relative to the manifest's folder)."""
    path = write_csv(tmp / name, header, rows)
    if images:
        for k, row in enumerate(rows):
            write_image(tmp / row[0], size, channels, seed=k)
    return path


def table_pixels(n: int, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """The uint8 pixels (n, prod(shape)) that `pixel_table` writes for the same arguments."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, int(np.prod(shape)))).astype(np.uint8)


def pixel_table(
    tmp: Path, n: int, shape: tuple[int, ...], fmt: str = "csv", *, labels: Optional[Sequence] = None,
    floats: bool = True, label_col: str = "label", name: str = "pixels", seed: int = 0,
) -> Path:
    """`n` flattened images of `shape` (H, W[, C]) with labels (default: row % 2).

    csv / parquet: a `label_col` column first, then one column per pixel named 0, 1, ...;
    npz: arrays x (n, prod(shape)) and y. `floats`: pixels in [0, 1] (as the IJCNN table),
    else uint8 0..255.
    """
    size = int(np.prod(shape))
    x = table_pixels(n, shape, seed)
    x = (x / 255.0).astype(np.float32) if floats else x
    y = np.asarray(labels if labels is not None else np.arange(n) % 2)
    path = tmp / f"{name}.{fmt}"
    if fmt == "npz":
        np.savez(path, x=x, y=y)
    elif fmt in ("csv", "parquet"):
        import pandas as pd

        frame = pd.DataFrame(x, columns=[str(i) for i in range(size)])
        frame.insert(0, label_col, y)
        frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return path


def channel_files(
    tmp: Path, ids: Sequence[str], channels: Sequence[str] = ("red", "green", "blue", "yellow"), *,
    size: int = 8, pattern: str = "{id}_{channel}.png", name: str = "channels",
) -> Path:
    """One grayscale PNG per channel per id, `root/pattern`; returns the root."""
    root = tmp / name
    for k, sample in enumerate(ids):
        for c, channel in enumerate(channels):
            write_image(root / pattern.format(id=sample, channel=channel), size, 1, seed=k * 16 + c)
    return root


def fake_cifar10(tmp: Path, n: int = 20, *, monkeypatch, seed: int = 0) -> Path:
    """A tiny CIFAR-10 in torchvision's on-disk layout (`cifar-10-batches-py/`: five
    pickled training batches, a test batch, `batches.meta`), `n` training images in all.

    torchvision checks each file's MD5 against the real archive's; the fake's own
    checksums are put in their place with `monkeypatch`, so that
    `torchvision.datasets.CIFAR10(root, download=False)` reads these files with
    its own loading code. Returns the root.
    """
    from torchvision.datasets import CIFAR10

    rng = np.random.default_rng(seed)
    folder = tmp / "cifar" / CIFAR10.base_folder
    folder.mkdir(parents=True)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def batch(file: str, count: int, labels: list[int]) -> str:
        data = rng.integers(0, 256, size=(count, 3 * 32 * 32), dtype=np.uint8)  # rows are CHW, as in the real files
        (folder / file).write_bytes(pickle.dumps({"data": data, "labels": labels, "batch_label": file}))
        return hashlib.md5((folder / file).read_bytes()).hexdigest()

    sizes = [len(part) for part in np.array_split(np.arange(n), 5)]
    labels = [k % 10 for k in range(n)]
    train, start = [], 0
    for k, count in enumerate(sizes):
        train.append([f"data_batch_{k + 1}", batch(f"data_batch_{k + 1}", count, labels[start : start + count])])
        start += count
    test = [["test_batch", batch("test_batch", 10, list(range(10)))]]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names, "num_cases_per_batch": sizes[0]}))
    meta = {**CIFAR10.meta, "md5": hashlib.md5((folder / "batches.meta").read_bytes()).hexdigest()}
    monkeypatch.setattr(CIFAR10, "train_list", train)
    monkeypatch.setattr(CIFAR10, "test_list", test)
    monkeypatch.setattr(CIFAR10, "meta", meta)
    return tmp / "cifar"


def fake_cifar100(tmp: Path, n_train: int = 200, n_test: int = 50, *, monkeypatch, seed: int = 0) -> Path:
    """A tiny CIFAR-100 in torchvision's on-disk layout (`cifar-100-python/`: the pickled `train`
    and `test` files and `meta`), labels `k % 100`. The test images are drawn from a generator
    of their own, so none equals a training image. As `fake_cifar10`, the files' own checksums
    replace the real archive's with `monkeypatch`. Returns the root."""
    from torchvision.datasets import CIFAR100

    folder = tmp / "cifar100" / CIFAR100.base_folder
    folder.mkdir(parents=True)

    def write(file: str, count: int, rng: np.random.Generator) -> str:
        data = rng.integers(0, 256, size=(count, 3 * 32 * 32), dtype=np.uint8)  # rows are CHW, as in the real files
        fine = [k % 100 for k in range(count)]
        (folder / file).write_bytes(pickle.dumps({"data": data, "fine_labels": fine, "coarse_labels": [k // 5 for k in fine], "filenames": [f"{file}_{k}.png" for k in range(count)]}))
        return hashlib.md5((folder / file).read_bytes()).hexdigest()

    train = [["train", write("train", n_train, np.random.default_rng(seed))]]
    test = [["test", write("test", n_test, np.random.default_rng(seed + 1))]]
    names = [f"class_{k:02d}" for k in range(100)]
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": names, "coarse_label_names": [f"super_{k}" for k in range(20)]}))
    monkeypatch.setattr(CIFAR100, "train_list", train)
    monkeypatch.setattr(CIFAR100, "test_list", test)
    monkeypatch.setattr(CIFAR100, "meta", {**CIFAR100.meta, "md5": hashlib.md5((folder / "meta").read_bytes()).hexdigest()})
    return tmp / "cifar100"


def cifar_rows(root: Path, file: str) -> np.ndarray:
    """The (N, 32, 32, 3) images of one pickled CIFAR file under `root`, as torchvision reads them."""
    from torchvision.datasets import CIFAR100

    with open(root / CIFAR100.base_folder / file, "rb") as f:
        data = pickle.load(f, encoding="latin1")["data"]
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


FAKE_CIFAR100_ENV = "RAYSWEEP_TEST_FAKE_CIFAR100"  # the fake's checksums, for processes monkeypatch cannot reach


def fake_cifar100_checksums(root: Path) -> str:
    """The fake's file checksums as JSON: what `trust_fake_cifar100` reads from the environment."""
    from torchvision.datasets import CIFAR100

    md5 = {f: hashlib.md5((root / CIFAR100.base_folder / f).read_bytes()).hexdigest() for f in ("train", "test", "meta")}
    return json.dumps(md5)


def trust_fake_cifar100() -> None:
    """A Ray `worker_process_setup_hook`: in a Ray worker (a trial, the final evaluation), the
    fake's checksums (from `FAKE_CIFAR100_ENV`) replace the real archive's, as `fake_cifar100`'s
    monkeypatch does in the test's own process."""
    import os

    from torchvision.datasets import CIFAR100

    md5 = json.loads(os.environ[FAKE_CIFAR100_ENV])
    CIFAR100.train_list = [["train", md5["train"]]]
    CIFAR100.test_list = [["test", md5["test"]]]
    CIFAR100.meta = {**CIFAR100.meta, "md5": md5["meta"]}
def pandas_pixel_table(tmp: Path, n: int, shape: tuple[int, ...], *, labels: Optional[Sequence] = None, name: str = "pixels") -> Path:
    """The table as a notebook saves it: `pd.DataFrame(x)` with a label column, written by
    `to_csv()` with its defaults, so a leading unnamed index column and int column names
    (header `,0,1,...,label`)."""
    import pandas as pd

    frame = pd.DataFrame(table_pixels(n, shape) / 255.0)
    frame["label"] = list(labels if labels is not None else np.arange(n) % 2)
    path = tmp / f"{name}.csv"
    frame.to_csv(path)
    return path


def split_pixel_files(tmp: Path, n: int, shape: tuple[int, ...], *, labels: Optional[Sequence] = None,
                      header: bool = False, index: bool = False) -> tuple[Path, Path]:
    """Pixels and labels in two files, `X_train.csv` and `y_train.csv`, as pandas writes
    them with `to_csv(header=header, index=index)`; returns (x, y)."""
    import pandas as pd

    x = pd.DataFrame(table_pixels(n, shape) / 255.0)
    y = pd.Series(list(labels if labels is not None else np.arange(n) % 2), name="label")
    x.to_csv(tmp / "X_train.csv", header=header, index=index)
    y.to_csv(tmp / "y_train.csv", header=header, index=index)
    return tmp / "X_train.csv", tmp / "y_train.csv"


def id_manifest(tmp: Path, ids: Sequence[str], labels: Sequence[str], *, header: Sequence[str] = ("image_id", "labels"),
                suffix: str = ".jpg", sizes: Sequence = (32,), name: str = "train.csv") -> tuple[Path, Path]:
    """A competition's manifest of sample ids without an extension (ECE449's `image_id,labels`)
    and the images `root/<id><suffix>`, of `sizes` in turn; returns (manifest, root)."""
    root = tmp / "images"
    for k, sample in enumerate(ids):
        write_image(root / f"{sample}{suffix}", sizes[k % len(sizes)], 3, seed=k)
    return write_csv(tmp / name, header, zip(ids, labels)), root


def hpa_channel_files(tmp: Path, ids: Sequence[str], labels: Sequence[str], *, header: Sequence[str] = ("ID", "Label"),
                      sizes: Sequence = (16,), channels: Sequence[str] = ("red", "green", "blue", "yellow"),
                      name: str = "train") -> tuple[Path, Path]:
    """Kaggle's HPA layout: a manifest (2018: `Id,Target` with '16 0'; 2021: `ID,Label` with
    '16|0') and one grayscale PNG per channel, `root/<id>_<channel>.png`, each sample of
    `sizes` in turn (the 2021 images are 1728, 2048 or 3072 px); returns (manifest, root)."""
    root = tmp / name
    for k, sample in enumerate(ids):
        for c, channel in enumerate(channels):
            write_image(root / f"{sample}_{channel}.png", sizes[k % len(sizes)], 1, seed=k * 16 + c)
    return write_csv(tmp / f"{name}.csv", header, zip(ids, labels)), root


def load(**data):
    """The samples a sweep whose `data` section is `data` reads."""
    from raysweep.config.sections.data import DataConfig
    from trainables.data.sources import load_samples

    return load_samples(DataConfig(**data))


def error(**data) -> str:
    """The one line of the `DataError` that reading `data` raises (fails if none is raised)."""
    import pytest

    from raysweep.errors import DataError

    with pytest.raises(DataError) as info:
        load(**data)
    return info.value.line()
