"""How images of any size reach the one size a batch needs (`augment.resize`).

The steps are albumentations transforms put in front of the preset's, in
training and validation alike, so validation, the preview and the deployed
model see what training saw. Downscaling uses OpenCV's area interpolation
(`area_for_downscale`), which does not alias when a 2048 px HPA image becomes
224 px. `Sizing.decode` is the smallest (height, width) the steps need from a
file: JPEG files are decoded at a reduced scale no smaller than it (PIL's
`Image.draft`, `trainables.data.stores`), which makes a 4000 px photograph
several times cheaper to read.

Modes (`augment.resize.mode`):

- auto                 image files, whose sizes may differ, are resized (stretched) to the
                       target size; arrays in memory, which have one size, are left alone
                       (the model's own `model.input_size` resize applies as before)
- none                 no resize
- resize               stretch to the target size
- center_crop          shorter side to `shorter_side`, then the centre at the target size
                       (the HPA report: 256, then 224)
- letterbox            longer side to fit, then pad with black: the whole image, undistorted
- random_resized_crop  training: a crop of `scale` of the area, resized to the target size;
                       validation: center_crop

The target size is `augment.resize.size`, else `model.input_size`, else the
timm model's default input size, else the first image's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import albumentations as A
import cv2

from raysweep.config.sections.model import ResizeConfig
from raysweep.errors import ConfigError

Size = tuple[int, int]  # (height, width)


@dataclass(frozen=True)
class Sizing:
    train: list
    val: list
    decode: Optional[Size] = None  # the smallest size the steps need from a file (JPEG draft mode)


def as_size(value) -> Optional[Size]:
    """(height, width) of a config size: one side or [height, width]."""
    if value is None:
        return None
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def target_size(cfg: ResizeConfig, first: Size, model_size: Optional[Size]) -> Size:
    return as_size(cfg.size) or model_size or first


def _center_crop(cfg: ResizeConfig, size: Size) -> tuple[list, Size]:
    shorter = cfg.shorter_side or max(size)
    if shorter < max(size):
        raise ConfigError(f"is {shorter}, smaller than the {size[0]}x{size[1]} crop; use at least {max(size)}", path="augment.resize.shorter_side")
    steps = [A.SmallestMaxSize(max_size=shorter, area_for_downscale="image"), A.CenterCrop(height=size[0], width=size[1])]
    return steps, (shorter, shorter)


def _letterbox(size: Size) -> list:
    fit = A.LongestMaxSize(max_size=size[0], area_for_downscale="image") if size[0] == size[1] else A.LongestMaxSize(max_size_hw=size, area_for_downscale="image")
    return [fit, A.PadIfNeeded(min_height=size[0], min_width=size[1], border_mode=cv2.BORDER_CONSTANT, fill=0)]


def resize_steps(cfg: ResizeConfig, first: Size, model_size: Optional[Size], *, one_size: bool) -> Sizing:
    """The resize steps for training and validation. `first`: the first image's size;
    `one_size`: every image has it (or the preset brings them to one size itself)."""
    mode = cfg.mode
    if mode == "none" or (mode == "auto" and one_size):
        return Sizing([], [])
    size = target_size(cfg, first, model_size)
    if mode in ("auto", "resize"):
        steps = [A.Resize(height=size[0], width=size[1], area_for_downscale="image")]
        return Sizing(steps, steps, size)
    if mode == "letterbox":
        return Sizing(_letterbox(size), _letterbox(size), size)
    crop, decode = _center_crop(cfg, size)
    if mode == "center_crop":
        return Sizing(crop, crop, decode)
    # random_resized_crop: a small crop is enlarged, so files are decoded at full size
    train = [A.RandomResizedCrop(size=size, scale=tuple(cfg.scale), area_for_downscale="image")]
    return Sizing(train, crop, None)
