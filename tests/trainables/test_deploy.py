"""The deployed model's preprocessing is the training pipeline's, in torch."""

import albumentations as A
import numpy as np
import pytest
import torch

from raysweep.config.sections.data import DataConfig
from raysweep.config.sections.model import AugmentConfig
from trainables.augment import build_transforms
from trainables.data.sources import load_samples
from trainables.deploy import DeployedClassifier, preprocessing, raw_pixels, takes_any_size

NORMALIZE = {"imagenet": "imagenet", "none": "none", "custom": {"mean": [0.2, 0.4, 0.6], "std": [0.3, 0.2, 0.1]}}


def images(n=5, h=12, w=10, c=3, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


def both(augment: AugmentConfig, batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(what training's validation pipeline gives the network, what the deployed steps give)."""
    _, h, w, c = batch.shape
    _, val = build_transforms(augment, h, w, c)
    expected = torch.stack([val(image) for image in batch])
    steps = preprocessing(val.compose.transforms, 255.0)
    return expected, steps(torch.from_numpy(batch.transpose(0, 3, 1, 2)).float())


@pytest.mark.parametrize("preset", ["none", "light", "cifar_hw2"])
@pytest.mark.parametrize("normalize, channels", [("imagenet", 1), ("imagenet", 3), ("none", 1), ("none", 3), ("custom", 3)])
def test_the_steps_give_the_network_exactly_what_validation_gave_it(preset, normalize, channels):
    expected, got = both(AugmentConfig(preset=preset, normalize=NORMALIZE[normalize]), images(c=channels))
    assert torch.equal(expected, got)


@pytest.mark.parametrize("shape", [(40, 30), (300, 180), (224, 224)])
def test_the_fit_into_a_square_is_opencvs_within_a_level(shape):
    expected, got = both(AugmentConfig(preset="ece449", normalize="none"), images(3, *shape))
    assert got.shape == expected.shape == (3, 3, 224, 224)
    difference = (torch.round(expected * 255) - torch.round(got * 255)).abs()  # in levels
    # OpenCV interpolates uint8 in fixed point: about one pixel in ten lands one level off
    assert difference.max() <= 1.0 and (difference > 0).float().mean() < 0.15


@pytest.mark.parametrize("resize", [
    {"mode": "resize", "size": [20, 16]}, {"mode": "center_crop", "size": 24, "shorter_side": 32},
    {"mode": "letterbox", "size": [24, 20]}, {"mode": "random_resized_crop", "size": 16},
])
@pytest.mark.parametrize("shape", [(40, 30), (13, 21)])
def test_every_resize_of_mixed_size_files_is_close_to_opencvs(resize, shape):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    smooth = [127.5 + 120 * np.sin(2 * np.pi * (xx * (1 + k) + yy * (2 - k) + c)) for k in range(3) for c in range(3)]
    batch = np.stack(smooth).reshape(3, 3, *shape).transpose(0, 2, 3, 1).round().astype(np.uint8)  # photographs are smooth
    _, val = build_transforms(AugmentConfig(resize=resize, normalize="none"), 8, 8, 3, one_size=False)
    expected = torch.stack([val(image) for image in batch])
    got = preprocessing(val.compose.transforms, 255.0)(torch.from_numpy(batch.transpose(0, 3, 1, 2)).float())
    assert got.shape == expected.shape
    difference = (torch.round(expected * 255) - torch.round(got * 255)).abs()
    # OpenCV's area interpolation (shrinking) against torch's antialiased bilinear: close, not equal
    assert difference.mean() < 4 and difference.max() <= 24


def test_a_validation_transform_without_a_counterpart_is_refused():
    with pytest.raises(NotImplementedError, match="Equalize"):
        preprocessing([A.Equalize(p=1.0)], 255.0)


def test_digits_round_trip_from_their_raw_0_to_16_pixels():
    from sklearn.datasets import load_digits

    samples = load_samples(DataConfig(kind="digits"))
    assert samples.pixel_max == 16.0
    stored = np.stack([samples.images.load(i) for i in range(len(samples))])
    raw = load_digits().images[:, None].astype(np.float32)
    assert np.array_equal(raw_pixels(stored, samples.pixel_max), raw)
    steps = preprocessing([], samples.pixel_max)  # the quantization alone
    assert torch.equal(steps(torch.from_numpy(raw)), torch.from_numpy(stored.transpose(0, 3, 1, 2)).float())


def test_a_float_table_in_0_1_records_its_scale(tmp_path):
    x = np.random.default_rng(0).random((6, 16)).astype(np.float32)
    np.savez(tmp_path / "t.npz", x=x, y=np.arange(6) % 2)
    samples = load_samples(DataConfig(kind="pixel_table", path=str(tmp_path / "t.npz"), reshape=[4, 4]))
    assert samples.pixel_max == 1.0
    assert load_samples(DataConfig(kind="synthetic", shape=[1, 8, 8])).pixel_max == 255.0


def classifier(task: str, size=(8, 8), any_size=False) -> DeployedClassifier:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    steps = preprocessing([A.LongestMaxSize(8), A.PadIfNeeded(8, 8)] if any_size else [A.ToFloat(max_value=255)], 16.0)
    return DeployedClassifier(net, steps, classes=["a", "b", "c"], task=task, in_chans=1, image_size=size, threshold=[0.5] * 3).eval()


def test_the_deployed_model_gives_probabilities_for_any_batch_size():
    model = classifier("multiclass")
    x = torch.rand(7, 1, 8, 8) * 16
    with torch.no_grad():
        probs = model(x)
        assert torch.allclose(probs.sum(1), torch.ones(7))
        assert torch.allclose(model(x[:1]), probs[:1], atol=1e-6)
        assert torch.equal(model.predict_labels(x), probs.argmax(1))
    multilabel = classifier("multilabel")
    with torch.no_grad():
        assert torch.equal(multilabel.predict_labels(x), (multilabel(x) >= 0.5).long())


def test_the_deployed_model_names_the_input_it_expects():
    model = classifier("multiclass")
    assert not takes_any_size(model.preprocess)
    with pytest.raises(ValueError, match=r"expected raw pixels of shape \(N, 1, 8, 8\), got \(2, 1, 9, 8\)"):
        model(torch.zeros(2, 1, 9, 8))
    with pytest.raises(ValueError, match=r"got \(2, 3, 8, 8\)"):
        model(torch.zeros(2, 3, 8, 8))
    resizing = classifier("multiclass", any_size=True)
    assert resizing.any_size and resizing(torch.zeros(2, 1, 20, 11)).shape == (2, 3)
