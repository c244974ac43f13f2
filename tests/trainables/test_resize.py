"""`augment.resize`: images of any size reach one size, in training and validation alike."""

import numpy as np
import pytest
from PIL import Image

from raysweep.config.sections.model import AugmentConfig, ModelConfig
from raysweep.errors import ConfigError
from tests.trainables import data_factory as make
from trainables.augment import build_transforms
from trainables.data.stores import FileStore
from trainables.models import input_size


def shapes(resize: dict, *sizes, one_size=False, model_size=None) -> set:
    """The (C, H, W) the train and validation transforms give images of `sizes`."""
    out = set()
    for tf in build_transforms(AugmentConfig(resize=resize), 8, 8, 3, model_size=model_size, one_size=one_size):
        for h, w in sizes:
            out.add(tuple(tf(make.random_image((h, w), 3)).shape))
    return out


@pytest.mark.parametrize("mode", ["resize", "center_crop", "letterbox", "random_resized_crop"])
def test_every_mode_gives_one_size_for_training_and_validation(mode):
    assert shapes({"mode": mode, "size": [24, 20]}, (30, 40), (97, 12), (8, 8)) == {(3, 24, 20)}


def test_auto_resizes_files_to_the_models_size_and_leaves_arrays_alone():
    assert shapes({}, (30, 40), (12, 9), model_size=(16, 16)) == {(3, 16, 16)}
    assert shapes({}, (12, 9), one_size=True, model_size=(16, 16)) == {(3, 12, 9)}  # the model resizes itself
    assert shapes({"mode": "none"}, (30, 40), (12, 9)) == {(3, 30, 40), (3, 12, 9)}
    assert shapes({}, (30, 40), (12, 9)) == {(3, 8, 8)}  # no model size known: the first image's


def test_the_models_size_is_its_input_size_else_timms_default():
    assert input_size(ModelConfig(name="resnet50")) == (224, 224)
    assert input_size(ModelConfig(name="resnet50", input_size=[96, 128])) == (96, 128)
    assert input_size(ModelConfig(name="tiny_cnn")) == (16, 16)


def test_the_hpa_reports_resize_256_and_center_crop_224():
    resize = {"mode": "center_crop", "shorter_side": 256, "size": 224}
    assert shapes(resize, (2048, 2048), (1728, 1728), (3072, 2000)) == {(3, 224, 224)}
    train, val = build_transforms(AugmentConfig(resize=resize), 8, 8, 3, one_size=False)
    names = [type(t).__name__ for t in val.compose.transforms]
    assert names[:2] == ["SmallestMaxSize", "CenterCrop"] and val.decode == (256, 256)


def test_a_shorter_side_below_the_crop_is_refused():
    with pytest.raises(ConfigError) as info:
        build_transforms(AugmentConfig(resize={"mode": "center_crop", "shorter_side": 200, "size": 224}), 8, 8, 3, one_size=False)
    assert info.value.line() == "augment.resize.shorter_side: is 200, smaller than the 224x224 crop; use at least 224"


def test_a_user_pipeline_replaces_the_training_augmentation_but_not_the_resize():
    import albumentations as A

    pipeline = A.to_dict(A.Compose([A.HorizontalFlip(p=1.0)]))
    cfg = AugmentConfig(pipeline=pipeline, resize={"mode": "resize", "size": 12})
    for tf in build_transforms(cfg, 8, 8, 3, one_size=False):
        assert tuple(tf(make.random_image((40, 30), 3)).shape) == (3, 12, 12)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(tmp_path):
    path = tmp_path / "big.jpg"
    Image.fromarray(np.full((1600, 1200, 3), 128, np.uint8)).save(path, quality=90)
    full = FileStore([path]).load(0)
    reduced = FileStore([path], decode=(224, 224)).load(0)
    assert full.shape == (1600, 1200, 3)
    assert reduced.shape == (400, 300, 3)  # libjpeg's 1/4 scale: the smallest still >= 224 on both sides
    png = tmp_path / "big.png"
    Image.fromarray(np.zeros((600, 500, 3), np.uint8)).save(png)
    assert FileStore([png], decode=(224, 224)).load(0).shape == (600, 500, 3)  # PNG has no reduced decode


def test_a_trial_trains_on_files_of_mixed_sizes_and_its_model_takes_any_size(sweep_file, tmp_path):
    """Batches of one size from files of three, through a loader worker process (the store's
    decode size and the transforms cross into it); the deployed model resizes as validation did."""
    import torch

    from raysweep.config import load_sweep
    from tests.conftest import tiny_config
    from trainables.deploy import deployed_model
    from trainables.session import LocalSession
    from trainables.trainer import Trainer

    root = make.image_folder(tmp_path, {"a": 6, "b": 6}, size=[(20, 14), (9, 9), (12, 30)], suffix=".jpg")
    raw = tiny_config(data={"kind": "image_folder", "root": str(root), "loader_workers": 1}, train={"epochs": 1, "batch_size": 4},
                      augment={"preset": "light", "resize": {"mode": "center_crop", "size": 12, "shorter_side": 14}})
    session = LocalSession(tmp_path / "run")
    final = Trainer(load_sweep(sweep_file(raw), run_checks=False).config, session).fit()
    assert final["epoch"] == 1 and np.isfinite(final["val/loss"])
    model = deployed_model(session.checkpoints[-1])
    assert model.any_size
    with torch.no_grad():
        for h, w in ((20, 14), (40, 33)):
            assert model(torch.rand(2, 3, h, w) * 255).shape == (2, 2)


def test_validate_reports_a_jpegs_own_size_though_trials_decode_it_smaller(sweep_file, tmp_path):
    from raysweep.config import load_sweep
    from tests.conftest import tiny_config
    from trainables.data.check import check_data

    from trainables.augment import sample_transforms
    from trainables.data.sources import load_samples

    root = make.image_folder(tmp_path, {"a": 2, "b": 2}, size=[(960, 640), (200, 200)], suffix=".jpg")
    raw = tiny_config(data={"kind": "image_folder", "root": str(root), "val_fraction": 0.5}, model={"name": "resnet18"})
    cfg = load_sweep(sweep_file(raw), run_checks=False).config
    summary = check_data(cfg)
    assert summary.image_shape == (960, 640, 3) and summary.model_input == (3, 224, 224)
    samples = load_samples(cfg.data)
    sample_transforms(cfg, samples)  # as a trial does
    assert samples.images.load(0).shape == (480, 320, 3)  # half scale: still >= 224 on both sides
