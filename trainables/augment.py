"""Augmentation pipelines, built with albumentations.

A pipeline comes from a preset (`augment.preset`) or, verbatim, from
albumentations' own serialized form (`augment.pipeline`, what `A.to_dict`
writes), so users can paste a pipeline they already have. Normalization and
the tensor conversion are appended here, identically for train and validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import albumentations as A
import numpy as np
from albumentations.pytorch import ToTensorV2

from raysweep.config.sections.model import AugmentConfig
from raysweep.errors import ConfigError
from raysweep.registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Pipelines:
    train: list
    val: list


Preset = Callable[[int, int], Pipelines]  # (height, width) -> pipelines
PRESETS: Registry[Preset] = Registry("augmentation preset")


@PRESETS.register("none")
def _none(h: int, w: int) -> Pipelines:
    return Pipelines([], [])


@PRESETS.register("light")
def _light(h: int, w: int) -> Pipelines:
    """Flip, small shifts and rotations, mild colour jitter."""
    return Pipelines(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(translate_percent=(-0.0625, 0.0625), scale=(0.9, 1.1), rotate=(-10, 10), p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.3),
        ],
        [],
    )


def _mean_std(cfg: AugmentConfig, channels: int) -> tuple[tuple, tuple] | None:
    if cfg.normalize == "none":
        return None
    if cfg.normalize == "imagenet":
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    else:
        mean, std = tuple(cfg.normalize["mean"]), tuple(cfg.normalize["std"])
    if len(mean) != channels:
        if cfg.normalize != "imagenet":
            raise ConfigError(f"has {len(mean)} channels, the data has {channels}", path="augment.normalize")
        # ImageNet statistics for 1- or 4-channel data: the channel average, as timm does for in_chans != 3
        mean, std = (float(np.mean(mean)),) * channels, (float(np.mean(std)),) * channels
    return mean, std


def _finish(transforms: list, cfg: AugmentConfig, channels: int) -> A.Compose:
    tail = []
    stats = _mean_std(cfg, channels)
    if stats is not None:
        tail.append(A.Normalize(mean=stats[0], std=stats[1], max_pixel_value=255.0))
    else:
        tail.append(A.ToFloat(max_value=255.0))
    tail.append(ToTensorV2())
    return A.Compose([*transforms, *tail])


def _from_dict(pipeline: dict) -> list:
    try:
        composed = A.from_dict(pipeline)
    except Exception as e:  # albumentations raises several types for a bad dict
        raise ConfigError(f"not a valid albumentations pipeline: {e}", path="augment.pipeline") from None
    return [composed]


class Transform:
    """Callable image -> tensor; picklable so DataLoader workers can use it.

    albumentations draws from its own generators, seeded at construction from
    OS entropy; `reseed` ties them to the trainer's per-epoch seed so that an
    epoch's augmentations can be replayed exactly after a resume.
    """

    def __init__(self, compose: A.Compose):
        self.compose = compose

    def reseed(self, seed: int) -> None:
        self.compose.set_random_seed(seed % 2**32)

    def __call__(self, image: np.ndarray):
        return self.compose(image=image)["image"]


def seed_loader_worker(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: each loader worker's augmentations from its own torch seed
    (derived by torch from the epoch's seed and the worker id)."""
    import torch

    info = torch.utils.data.get_worker_info()
    transform = getattr(info.dataset, "transform", None)
    if isinstance(transform, Transform):
        transform.reseed(torch.initial_seed())


def build_transforms(cfg: AugmentConfig, height: int, width: int, channels: int) -> tuple[Transform, Transform]:
    """(train, validation) transforms for images of the given size."""
    pipes = PRESETS.get(cfg.preset, path="augment.preset")(height, width)
    train = _from_dict(cfg.pipeline) if cfg.pipeline is not None else pipes.train
    return Transform(_finish(train, cfg, channels)), Transform(_finish(pipes.val, cfg, channels))
