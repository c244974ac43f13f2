"""Augmentation presets and pasted albumentations pipelines."""

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
import yaml

from raysweep.config import load_sweep
from raysweep.config.sections.model import AugmentConfig
from raysweep.errors import ConfigError
from tests.conftest import tiny_config
from trainables.augment import PRESETS, build_transforms
from trainables.autoaugment import AutoAugment, cifar10_policy


def image(h=20, w=16, c=3, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, c), dtype=np.uint8)


def flat(compose: A.Compose) -> list:
    """Every transform in a pipeline, depth first."""
    out = []
    for t in compose.transforms:
        out.append(t)
        if hasattr(t, "transforms"):
            out += flat(t)
    return out


def test_presets_registered():
    assert PRESETS.names() == ["cifar_hw2", "ece449", "light", "none"]


@pytest.mark.parametrize("preset", ["none", "light", "ece449", "cifar_hw2"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_presets_transform_1_3_and_4_channel_images(preset, channels):
    train, val = build_transforms(AugmentConfig(preset=preset), 20, 16, channels)
    size = (224, 224) if preset == "ece449" else (20, 16)
    train.reseed(0)
    for k in range(12):  # enough draws to pass through most random branches
        out = train(image(c=channels, seed=k))
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
        assert tuple(out.shape) == (channels, *size)
    out = val(image(c=channels))
    assert tuple(out.shape) == (channels, *size) and out.dtype == torch.float32


@pytest.mark.parametrize("preset", ["light", "ece449", "cifar_hw2"])
def test_reseeding_replays_the_same_augmentations(preset):
    first, _ = build_transforms(AugmentConfig(preset=preset), 24, 24, 3)
    second, _ = build_transforms(AugmentConfig(preset=preset), 24, 24, 3)
    images = [image(24, 24, seed=k) for k in range(6)]
    first.reseed(123)
    second.reseed(123)
    a = [first(x) for x in images]
    b = [second(x) for x in images]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    first.reseed(124)
    c = [first(x) for x in images]
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_validation_transforms_are_deterministic():
    _, val = build_transforms(AugmentConfig(preset="ece449"), 30, 40, 3)
    x = image(30, 40)
    assert torch.equal(val(x), val(x))
    # the whole image is kept: scaled so the longer side is 224, the rest padded black
    out = build_transforms(AugmentConfig(preset="ece449", normalize="none"), 30, 40, 3)[1](x)
    assert out.shape == (3, 224, 224)
    assert torch.all(out[:, :27] == 0) and torch.all(out[:, -27:] == 0) and out[:, 28:196].amax() > 0


def test_ece449_parameters_match_the_report():
    train, val = build_transforms(AugmentConfig(preset="ece449"), 64, 48, 3)
    steps = train.compose.transforms
    names = [type(t).__name__ for t in steps]
    assert names == ["LongestMaxSize", "PadIfNeeded", "Rotate", "HorizontalFlip", "OneOf", "OneOf", "CoarseDropout", "Normalize", "ToTensorV2"]
    size, pad, rotate, flip, colour, blur, dropout = steps[:7]
    assert size.max_size == 224 and (pad.min_height, pad.min_width) == (224, 224)
    assert tuple(rotate.limit) == (-10, 10) and rotate.p == 0.5
    assert flip.p == 0.5
    assert colour.p == 0.5 and [type(t).__name__ for t in colour.transforms] == ["RandomGamma", "HueSaturationValue", "RandomBrightnessContrast"]
    gamma, hsv, bc = colour.transforms
    assert tuple(gamma.gamma_limit) == (60, 120)
    assert tuple(hsv.hue_shift_limit) == (-10, 10) and tuple(hsv.sat_shift_limit) == (-20, 20)
    assert tuple(bc.brightness_limit) == (-0.2, 0.2)
    assert blur.p == 0.5 and [type(t).__name__ for t in blur.transforms] == ["GaussianBlur", "MotionBlur", "MedianBlur"]
    assert all(tuple(t.blur_limit) == (3, 3) for t in blur.transforms)  # blur_limit=4 in albumentations 0.4: 3x3 kernels
    # ... and its GaussianBlur was OpenCV's with sigma 0, which sigma 0.85 reproduces
    x = image(16, 16)
    old = cv2.GaussianBlur(x, (3, 3), 0).astype(int)
    assert np.abs(blur.transforms[0](image=x)["image"].astype(int) - old).max() <= 1
    assert dropout.p == 0.5 and tuple(dropout.num_holes_range) == (1, 5)
    assert tuple(dropout.hole_height_range) == (8, 8) and tuple(dropout.hole_width_range) == (8, 8) and dropout.fill == 0
    assert [type(t).__name__ for t in val.compose.transforms] == ["LongestMaxSize", "PadIfNeeded", "Normalize", "ToTensorV2"]


def test_ece449_leaves_hue_and_saturation_out_for_non_rgb_images():
    for channels in (1, 4):
        train, _ = build_transforms(AugmentConfig(preset="ece449"), 32, 32, channels)
        assert "HueSaturationValue" not in [type(t).__name__ for t in flat(train.compose)]


def test_cifar_hw2_pipeline():
    train, val = build_transforms(AugmentConfig(preset="cifar_hw2"), 32, 32, 3)
    steps = train.compose.transforms
    assert [type(t).__name__ for t in steps] == ["AutoAugment", "Rotate", "HorizontalFlip", "GaussNoise", "Normalize", "ToTensorV2"]
    assert len(steps[0].torchvision._policies) == 25 and tuple(steps[1].limit) == (-10, 10)
    assert [type(t).__name__ for t in val.compose.transforms] == ["Normalize", "ToTensorV2"]  # CIFAR stays 32 px; the model may upsample


def test_autoaugment_is_torchvisions_with_the_pipelines_seed():
    """The same draws as torchvision's own AutoAugment seeded alike, and replayed by the pipeline's seed."""
    from torchvision.transforms import v2

    policy = cifar10_policy(3)
    assert isinstance(policy, AutoAugment) and policy.policy == v2.AutoAugmentPolicy.CIFAR10
    x = image(32, 32, 3)
    policy.set_random_seed(11)
    first = [policy(image=x)["image"] for _ in range(12)]
    policy.set_random_seed(11)
    seeds = [policy.get_params()["seed"] for _ in range(12)]
    reference = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)
    for seed, got in zip(seeds, first):
        torch.manual_seed(seed)
        assert np.array_equal(got, reference(torch.from_numpy(x).permute(2, 0, 1)).permute(1, 2, 0).numpy())
    assert sum(not np.array_equal(got, x) for got in first) >= 3  # it does augment


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_every_autoaugment_operation_applies_to_any_channel_count(channels):
    x = image(16, 16, channels)
    policy = cifar10_policy(channels)
    policy.set_random_seed(0)
    state = torch.get_rng_state()
    outs = [policy(image=x)["image"] for _ in range(60)]  # every sub-policy, with its probabilities
    assert all(out.shape == x.shape and out.dtype == np.uint8 for out in outs)
    assert torch.equal(torch.get_rng_state(), state)  # torch's own stream is left alone
    if channels == 4:  # the groups of channels move together: where RGB went black at the border, so did Y
        moved = [out for out in outs if (out[..., :3] == 0).all(axis=2).sum() > (x[..., :3] == 0).all(axis=2).sum() + 8]
        assert moved and all(((out[..., :3] == 0).all(axis=2) <= (out[..., 3] == 0)).mean() > 0.95 for out in moved)
    assert len(policy.torchvision._policies) == 25


def test_imagenet_normalization_averages_for_other_channel_counts():
    _, val = build_transforms(AugmentConfig(), 4, 4, 1)
    out = val(np.full((4, 4, 1), 255, np.uint8))
    mean, std = np.mean([0.485, 0.456, 0.406]), np.mean([0.229, 0.224, 0.225])
    assert torch.allclose(out, torch.full((1, 4, 4), float((1 - mean) / std)))


def test_pasted_pipeline_round_trips_through_the_sweep_file(sweep_file):
    original = A.Compose([
        A.HorizontalFlip(p=0.5),
        A.Affine(rotate=(-15, 15), translate_percent=(-0.1, 0.1), p=0.7),
        A.OneOf([A.RandomGamma(gamma_limit=(70, 130)), A.GaussianBlur(blur_limit=(3, 5))], p=0.8),
        A.CoarseDropout(num_holes_range=(1, 3), hole_height_range=(4, 4), hole_width_range=(4, 4), p=0.5),
    ])
    text = yaml.safe_dump(A.to_dict(original))
    sweep = load_sweep(sweep_file(tiny_config(augment={"pipeline": yaml.safe_load(text), "normalize": "none"})))
    train, _ = build_transforms(sweep.config.augment, 24, 24, 3)
    images = [image(24, 24, seed=k) for k in range(8)]
    original.set_random_seed(7)
    train.reseed(7)
    expected = [torch.from_numpy(original(image=x)["image"].transpose(2, 0, 1) / 255.0).float() for x in images]
    got = [train(x) for x in images]
    assert all(torch.allclose(e, g) for e, g in zip(expected, got))
    assert sum(not torch.allclose(e, torch.from_numpy(x.transpose(2, 0, 1) / 255.0).float()) for e, x in zip(expected, images)) >= 4


def test_pasted_pipeline_may_omit_the_version_header():
    inner = A.to_dict(A.Compose([A.VerticalFlip(p=1.0)]))["transform"]
    train, _ = build_transforms(AugmentConfig(pipeline=inner, normalize="none"), 4, 4, 1)
    x = image(4, 4, 1)
    assert torch.equal(train(x)[0], torch.from_numpy(x[::-1, :, 0] / 255.0).float())


@pytest.mark.parametrize(
    "pipeline, expected",
    [
        ({"transform": {"__class_fullname__": "NoSuchFlip", "p": 1.0}}, "augment.pipeline.transform: not a valid albumentations pipeline: unknown transform 'NoSuchFlip'"),
        (
            {"__class_fullname__": "Compose", "transforms": [{"__class_fullname__": "VerticalFlip", "p": 1}, {"__class_fullname__": "HorizontalFlp", "p": 1}]},
            "augment.pipeline.transforms[1]: not a valid albumentations pipeline: unknown transform 'HorizontalFlp', did you mean 'HorizontalFlip' or 'VerticalFlip'?",
        ),
        (
            {"transform": {"__class_fullname__": "Compose", "transforms": [{"__class_fullname__": "OneOf", "p": 1, "transforms": [{"__class_fullname__": "HorizontalFlip", "p": 2}]}]}},
            "augment.pipeline.transform.transforms[0].transforms[0]: not a valid albumentations pipeline: HorizontalFlip: p: Input should be less than or equal to 1",
        ),
        (
            {"__class_fullname__": "Compose", "transforms": [{"p": 1}]},
            "augment.pipeline.transforms[0]: not a valid albumentations pipeline: a transform has no '__class_fullname__'",
        ),
    ],
)
def test_a_bad_pipeline_is_a_config_error_naming_the_transform(pipeline, expected):
    with pytest.raises(ConfigError) as info:
        build_transforms(AugmentConfig(pipeline=pipeline), 8, 8, 3)
    assert info.value.line() == expected


@pytest.mark.parametrize("preset", ["light", "ece449", "cifar_hw2"])
def test_transforms_survive_pickling_for_loader_workers(preset):
    import pickle

    train, _ = build_transforms(AugmentConfig(preset=preset), 24, 24, 3)
    copy = pickle.loads(pickle.dumps(train))
    train.reseed(5)
    copy.reseed(5)
    x = image(24, 24)
    assert all(torch.equal(train(x), copy(x)) for _ in range(4))
