"""Sources whose samples are image files: a folder per class, a CSV manifest,
or one file per channel named by a manifest of sample ids.

Manifest rows are named by their line in the file (the header is line 1), as
an editor shows them: `train.csv: line 7: label 'x' is not in data.classes`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from raysweep.config.sections.data import DataConfig
from raysweep.errors import DataError
from trainables.data.labels import encode_labels
from trainables.data.layout import field_separator, index_columns
from trainables.data.registry import register_source
from trainables.data.samples import Samples, infer_task
from trainables.data.stores import (
    IMAGE_SUFFIXES,
    MODE_CHANNELS,
    ChannelStore,
    FileStore,
)


def existing_dir(value: str, key: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"no such directory: {value}", path=f"data.{key}")
    return path


def existing_file(value: str, key: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_file():
        raise DataError(f"no such file: {value}", path=f"data.{key}")
    return path


def line(i: int) -> str:
    return f"line {i + 2}"


class Manifest:
    """A CSV file read as text columns (labels like '8 5 0' stay strings), its separator
    `data.sep` or detected, a row index column (pandas' `to_csv()`) dropped."""

    def __init__(self, cfg: DataConfig):
        import pandas as pd

        self.path = existing_file(cfg.path, "path")
        sep = field_separator(self.path, cfg.sep)
        try:
            self.frame = pd.read_csv(self.path, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True)
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as e:
            raise DataError(f"not a readable CSV file: {str(e).strip()}", source=str(self.path)) from None
        self.frame.columns = [str(c).strip() for c in self.frame.columns]
        self.frame = self.frame.drop(columns=index_columns(list(self.frame.columns), cfg.index_col, self.path))
        if self.frame.empty:
            raise DataError("has no rows", source=str(self.path))

    def __len__(self) -> int:
        return len(self.frame)

    def column(self, name: str, key: str, *, filled: bool = False) -> list[str]:
        """The cells of column `name` (named by `data.<key>`); `filled`: none may be empty."""
        if name not in self.frame.columns:
            raise DataError(f"no column {name!r} (columns: {', '.join(self.frame.columns)})", source=str(self.path), path=f"data.{key}")
        cells = [v.strip() for v in self.frame[name].tolist()]
        for i, v in enumerate(cells if filled else ()):
            if not v:
                raise DataError(f"empty {name!r} cell", source=str(self.path), path=line(i))
        return cells

    def where(self, i: int) -> tuple[str, str]:
        return str(self.path), line(i)

    def listed(self) -> list[str]:
        return [f"{self.path} {line(i)}" for i in range(len(self))]

    def labels(self, cfg: DataConfig) -> tuple[np.ndarray, list[str], str]:
        cells = self.column(cfg.label_col, "label_col")
        return encode_labels(cells, sep=cfg.label_sep, declared_classes=cfg.classes, task=cfg.task, where=self.where)

    def groups(self, cfg: DataConfig):
        return np.array(self.column(cfg.group_col, "group_col")) if cfg.group_col else None


def image_files(base: Path, names: list[str], ext: Optional[str], where) -> list[Path]:
    """The file of each manifest entry: `base/name`, with `data.image_ext` added where the
    name has no image suffix, else the one image file `name.*` beside where it would be
    (competitions list ids: ECE449's `image_id`, HPA 2018's `Id`)."""
    listings: dict[Path, dict[str, list[Path]]] = {}
    out = []
    for i, name in enumerate(names):
        path = base / name
        if path.suffix.lower() in IMAGE_SUFFIXES or path.is_file():
            out.append(path)
        elif ext:
            out.append(path.with_name(path.name + ext))
        else:
            out.append(_find_image(path, listings, where(i)))
    return out


def _find_image(path: Path, listings: dict, where: tuple[str, str]) -> Path:
    """The one image file named `path` plus an image suffix (each folder listed once)."""
    folder = path.parent
    if folder not in listings:
        listing: dict[str, list[Path]] = {}
        for p in (folder.iterdir() if folder.is_dir() else ()):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                listing.setdefault(p.name[: -len(p.suffix)], []).append(p)
        listings[folder] = listing
    found = sorted(listings[folder].get(path.name, []))
    if len(found) > 1:
        raise DataError(f"names {path.name!r}, which has several image files ({', '.join(p.name for p in found)}); set data.image_ext", source=where[0], path=where[1])
    return found[0] if found else path  # a missing file is reported where it is read, with its line


def channels_of(store, mode) -> int:
    """The channel count every sample will have: the mode's, else the first file's."""
    return MODE_CHANNELS[mode] if mode else int(store.load(0).shape[2])


@register_source("image_folder", requires=("root",))
def image_folder(cfg: DataConfig) -> Samples:
    """`data.root/<class>/**/<image>`: one sub-folder per class, images anywhere under it.
    Classes are the folder names sorted, or `data.classes` (then every folder must be one)."""
    root = existing_dir(cfg.root, "root")
    folders = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")}
    if not folders:
        raise DataError(f"no class folders in {cfg.root}", path="data.root")
    classes = list(cfg.classes) if cfg.classes else sorted(folders)
    for name, folder in folders.items():
        if name not in classes:
            raise DataError(f"folder is not a class in data.classes ({', '.join(classes)})", source=str(folder))
    paths, labels = [], []
    for k, name in enumerate(classes):
        if name in folders:
            found = sorted(p for p in folders[name].rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
            paths += found
            labels += [k] * len(found)
    if not paths:
        raise DataError(f"no image files under {cfg.root}", path="data.root")
    labels = np.array(labels, dtype=np.int64)
    store = FileStore(paths, cfg.image_mode)
    return Samples(store, labels, classes, infer_task(cfg.task, labels, len(classes)), in_chans=channels_of(store, cfg.image_mode))


@register_source("csv", requires=("path",))
def csv_manifest(cfg: DataConfig) -> Samples:
    """A CSV manifest at `data.path`: image paths in `data.image_col` (relative to
    `data.root`, else to the manifest's folder; without an extension, the file found
    or `data.image_ext` added), labels in `data.label_col`
    (several per row, split on `data.label_sep`, make the task multi-label),
    group ids for `strategy: group` in `data.group_col`."""
    manifest = Manifest(cfg)
    base = existing_dir(cfg.root, "root") if cfg.root else manifest.path.parent
    names = manifest.column(cfg.image_col, "image_col", filled=True)
    labels, classes, task = manifest.labels(cfg)
    store = FileStore(image_files(base, names, cfg.image_ext, manifest.where), cfg.image_mode, manifest.listed())
    return Samples(store, labels, classes, task, groups=manifest.groups(cfg), in_chans=channels_of(store, cfg.image_mode))


@register_source("channel_files", requires=("path", "root", "channels"))
def channel_files(cfg: DataConfig) -> Samples:
    """One grayscale file per channel: `data.root/<data.channel_pattern>` for every
    sample id in the manifest's `data.image_col` and every channel in `data.channels`
    (in that order: [red, green, blue], [yellow, blue, red] or all four)."""
    manifest = Manifest(cfg)
    root = existing_dir(cfg.root, "root")
    ids = manifest.column(cfg.image_col, "image_col", filled=True)
    labels, classes, task = manifest.labels(cfg)
    store = ChannelStore(root, ids, list(cfg.channels), cfg.channel_pattern, manifest.listed())
    return Samples(store, labels, classes, task, groups=manifest.groups(cfg), in_chans=len(cfg.channels))
