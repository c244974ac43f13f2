"""The `data` section: where samples come from and how they are split.

One flat section serves every source kind; each kind reads the fields it
needs (`trainables.data.sources` says which), so `--set data.kind=synthetic`
can turn any recipe into a smoke test without deleting its paths.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import Field, field_validator

from raysweep.config.base import Section, fixed

# the sources a held-out `data.test_path` serves, and the key it stands in for (same layout)
TEST_PATH_REPLACES = {"csv": "path", "pixel_table": "path", "channel_files": "path", "image_folder": "root"}


class DataConfig(Section):
    kind: str = fixed("digits", description="source: digits, digits_lt, synthetic, image_folder, csv, pixel_table, channel_files, torchvision")
    task: Literal["auto", "binary", "multiclass", "multilabel"] = fixed("auto", description="inferred from the labels when auto")
    classes: Optional[list[str]] = fixed(None, description="declared class names; a label outside them is an error")
    num_classes: Optional[int] = fixed(None, ge=2, description="class count (synthetic data)")

    # splitting
    val_fraction: float = fixed(0.25, gt=0, lt=1, description="holdout fraction when folds is not set")
    folds: Optional[int] = fixed(None, ge=2, description="k for k-fold splits")
    fold: int = Field(0, ge=0, description="which fold is the validation fold (searchable: a fold_as_trial grid axis)")
    strategy: Literal["stratified", "multilabel_stratified", "group", "plain"] = fixed("stratified")
    group_col: Optional[str] = fixed(None, description="column holding the group id for strategy: group")
    seed: int = fixed(0, description="seed of the split, kept apart from train.seed so every trial sees the same split")

    # the held-out test split: never trained on nor selected on; the best trial is evaluated on it once, at the end
    official_test: bool = fixed(False, description="torchvision: evaluate the best trial once on the dataset's official test split (train=False) at the end of the sweep")
    test_path: Optional[str] = fixed(None, description="held-out test data in data.path's layout (csv, pixel_table, channel_files) or data.root's (image_folder): the best trial is evaluated on it once, at the end of the sweep")

    # file-backed sources
    path: Optional[str] = fixed(None, description="manifest CSV or pixel table (csv, pixel_table, channel_files)")
    root: Optional[str] = fixed(None, description="image directory (image_folder, csv, channel_files) or torchvision root")
    labels_path: Optional[str] = fixed(None, description="pixel_table: a second file holding the labels, one row per row of data.path (X_train.csv and y_train.csv), with or without a header; its column data.label_col, else its only column")
    image_col: str = fixed("image", description="manifest column holding the image path or sample id")
    image_ext: Optional[str] = fixed(None, description="extension added to manifest entries that have none (e.g. .png); by default the one image file named <entry>.* is found")
    label_col: str = fixed("label", description="column holding the label(s); in a file without a header, its position from 0 as a string ('0')")
    label_sep: str = fixed("auto", description="separator of multi-label labels, as in '8 5 0' or '8|5|0'; auto: the one of | ; , or space the label cells use")
    sep: Optional[str] = fixed(None, description="field separator of a manifest or pixel table; by default detected from its first line (comma, tab, semicolon or |)")
    index_col: Optional[Union[int, str]] = fixed(None, description="a column to drop, by name or position from 0: a row index, as pandas' to_csv() writes; by default a leading unnamed column (pandas' index) is dropped")
    reshape: Optional[list[int]] = fixed(None, description="H, W[, C] of a flattened pixel row")
    image_mode: Optional[Literal["L", "RGB", "RGBA"]] = fixed(None, description="convert every image file to this PIL mode (L: 1 channel, RGB: 3, RGBA: 4); by default a grayscale file stays 1 channel and alpha is dropped")
    channels: Optional[list[str]] = fixed(None, description="channel files in order, e.g. [red, green, blue]")
    channel_pattern: str = fixed("{id}_{channel}.png", description="file name of one channel of one sample")
    name: Optional[str] = fixed(None, description="torchvision dataset class, e.g. CIFAR100")
    download: bool = fixed(False, description="let torchvision download the dataset")

    # generated sources
    num_samples: int = fixed(512, ge=8, description="samples (synthetic)")
    shape: list[int] = fixed([3, 16, 16], description="C, H, W of a sample (synthetic)")
    imbalance_ratio: float = fixed(100.0, ge=1, description="largest / smallest class size (digits_lt)")

    loader_workers: Union[int, Literal["auto"]] = fixed("auto", description="DataLoader worker processes per training worker; auto: 0 for data held in memory, else cpus_per_worker - 1 (1 to 8), since bench/data_pipeline.py finds 5-7 per GPU keep resnet50 fed at 224 px")

    @property
    def has_test_split(self) -> bool:
        """Whether the sweep ends by evaluating its best trial on a held-out test split."""
        return self.official_test or self.test_path is not None

    @field_validator("shape")
    @classmethod
    def _shape(cls, v: list[int]) -> list[int]:
        if len(v) != 3 or any(d < 1 for d in v):
            raise ValueError(f"must be [channels, height, width] of positive sizes, got {v}")
        return v

    @field_validator("reshape")
    @classmethod
    def _reshape(cls, v: Optional[list[int]]) -> Optional[list[int]]:
        if v is not None and (len(v) not in (2, 3) or any(d < 1 for d in v)):
            raise ValueError(f"must be [height, width] or [height, width, channels] of positive sizes, got {v}")
        return v

    @field_validator("sep", "label_sep")
    @classmethod
    def _separator(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and v != "auto" and len(v) != 1:
            raise ValueError(f"must be one character (or auto), got {v!r}")
        return v

    @field_validator("image_ext")
    @classmethod
    def _ext(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and (not v.strip(".") or "/" in v):
            raise ValueError(f"must be a file extension such as .png, got {v!r}")
        return v if v is None or v.startswith(".") else f".{v}"

    @field_validator("channel_pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        import string

        fields = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        if fields != {"id", "channel"}:
            raise ValueError(f"must name the sample as {{id}} and the channel as {{channel}} (and nothing else), got {v!r}")
        return v

    @field_validator("loader_workers")
    @classmethod
    def _workers(cls, v):
        if isinstance(v, int) and v < 0:
            raise ValueError(f"must be >= 0 or 'auto', got {v}")
        return v
