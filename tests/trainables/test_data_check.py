"""`raysweep validate --data`: every data failure is one line naming the file, row or key."""


import numpy as np
import pytest
from PIL import Image

from raysweep.cli import main
from raysweep.config import load_sweep
from raysweep.errors import DataError
from tests.conftest import tiny_config
from tests.trainables import data_factory as make
from trainables.data.check import check_data, write_preview


def config(sweep_file, data: dict, **sections):
    return load_sweep(sweep_file(tiny_config(data=data, **sections)), run_checks=False).config


def check_error(sweep_file, data: dict, **sections) -> str:
    with pytest.raises(DataError) as info:
        check_data(config(sweep_file, data, **sections))
    return info.value.line()


def test_good_data_gives_a_summary(sweep_file, tmp_path):
    root = make.image_folder(tmp_path, {"a": 6, "b": 6}, size=8, channels=3)
    summary = check_data(config(sweep_file, {"kind": "image_folder", "root": str(root)}, model={"in_chans": 3}))
    # image files are resized to what tiny_cnn takes (timm's config for it: 16 px)
    assert str(summary) == "12 samples, 2 classes (binary), 9 train / 3 val, images 8x8x3, resized to 16x16"


def test_missing_directory(sweep_file, tmp_path):
    assert check_error(sweep_file, {"kind": "image_folder", "root": str(tmp_path / "gone")}) == f"data.root: no such directory: {tmp_path / 'gone'}"


def test_missing_image_file_names_the_file_and_the_manifest_line(sweep_file, tmp_path):
    manifest = make.csv_manifest(tmp_path, [("a.png", "x"), ("b.png", "y"), ("c.png", "x"), ("d.png", "y")])
    (tmp_path / "c.png").unlink()
    assert check_error(sweep_file, {"kind": "csv", "path": str(manifest)}) == f"{tmp_path / 'c.png'}: no such file ({manifest} line 4)"


def test_corrupt_image(sweep_file, tmp_path):
    root = make.image_folder(tmp_path, {"a": 3, "b": 3})
    (root / "b" / "b_1.png").write_bytes(b"\x89PNG but not really")
    assert check_error(sweep_file, {"kind": "image_folder", "root": str(root)}) == f"{root / 'b' / 'b_1.png'}: not an image file PIL can read"


def test_truncated_image(sweep_file, tmp_path):
    root = make.image_folder(tmp_path, {"a": 3, "b": 3}, size=32)
    data = (root / "a" / "a_2.png").read_bytes()
    (root / "a" / "a_2.png").write_bytes(data[: len(data) // 2])
    assert check_error(sweep_file, {"kind": "image_folder", "root": str(root)}) == f"{root / 'a' / 'a_2.png'}: cannot decode image: image file is truncated"


def test_label_outside_the_declared_classes(sweep_file, tmp_path):
    manifest = make.csv_manifest(tmp_path, [("a.png", "cat"), ("b.png", "dog"), ("c.png", "cta")])
    assert check_error(sweep_file, {"kind": "csv", "path": str(manifest), "classes": ["cat", "dog"]}) == (
        f"{manifest}: line 4: label 'cta' is not in data.classes (cat, dog)"
    )


def test_folder_outside_the_declared_classes(sweep_file, tmp_path):
    root = make.image_folder(tmp_path, {"cat": 2, "dgo": 2})
    assert check_error(sweep_file, {"kind": "image_folder", "root": str(root), "classes": ["cat", "dog"]}) == (
        f"{root / 'dgo'}: folder is not a class in data.classes (cat, dog)"
    )


def test_class_with_no_samples(sweep_file, tmp_path):
    root = make.image_folder(tmp_path, {"cat": 3, "dog": 3})
    assert check_error(sweep_file, {"kind": "image_folder", "root": str(root), "classes": ["cat", "dog", "eel"]}) == "data: class 'eel' has no samples"


def test_more_folds_than_the_smallest_class(sweep_file, tmp_path):
    root = make.image_folder(tmp_path, {"cat": 6, "dog": 2})
    assert check_error(sweep_file, {"kind": "image_folder", "root": str(root), "folds": 3}) == (
        "data.folds: a stratified split into 3 folds needs >= 3 samples per class; class 'dog' has 2"
    )


def test_reshape_not_matching_the_rows(sweep_file, tmp_path):
    table = make.pixel_table(tmp_path, n=8, shape=(74, 55, 3), fmt="csv")
    assert check_error(sweep_file, {"kind": "pixel_table", "path": str(table), "reshape": [74, 55, 2]}) == (
        f"data.reshape: [74, 55, 2] holds 8140 values but the rows of {table} have 12210 pixels"
    )
    # the IJCNN report's other reading of the same rows: one 111 x 110 channel
    summary = check_data(config(sweep_file, {"kind": "pixel_table", "path": str(table), "reshape": [111, 110]}))
    assert summary.image_shape == (111, 110, 1)


def test_mixed_channel_counts(sweep_file, tmp_path):
    root = make.image_folder(tmp_path, {"a": 3, "b": 3}, channels=3)
    make.write_image(root / "b" / "b_1.png", 8, 1)
    assert check_error(sweep_file, {"kind": "image_folder", "root": str(root)}) == (
        f"{root / 'b' / 'b_1.png'}: has 1 channel but the first image ({root / 'a' / 'a_0.png'}) has 3; "
        "set data.image_mode (L, RGB or RGBA) to convert every file"
    )
    summary = check_data(config(sweep_file, {"kind": "image_folder", "root": str(root), "image_mode": "RGB"}))
    assert summary.image_shape == (8, 8, 3)


def test_channel_count_other_than_the_models(sweep_file, tmp_path):
    root = make.image_folder(tmp_path, {"a": 3, "b": 3}, channels=3)
    assert check_error(sweep_file, {"kind": "image_folder", "root": str(root)}, model={"in_chans": 1}) == (
        f"model.in_chans: is 1 but the images have 3 channels ({root / 'a' / 'a_0.png'})"
    )
    table = make.pixel_table(tmp_path, n=8, shape=(4, 4), fmt="npz")
    assert check_error(sweep_file, {"kind": "pixel_table", "path": str(table), "reshape": [4, 4]}, model={"in_chans": 3}) == (
        f"model.in_chans: is 3 but the images have 1 channel ({table}: row 0)"
    )


def test_mixed_sizes_are_resized_unless_the_resize_is_off(sweep_file, tmp_path):
    root = make.image_folder(tmp_path, {"a": 4, "b": 4}, size=8)
    make.write_image(root / "b" / "b_2.png", (12, 10), 3)
    data = {"kind": "image_folder", "root": str(root)}
    assert check_error(sweep_file, data, augment={"resize": {"mode": "none"}}) == (
        f"{root / 'b' / 'b_2.png'}: is 12x10 but {root / 'a' / 'a_0.png'} is 8x8; "
        "a batch needs one size: set augment.resize.mode (resize, center_crop, letterbox) rather than none"
    )
    assert check_data(config(sweep_file, data)).model_input == (3, 16, 16)  # tiny_cnn's size, by default
    assert check_data(config(sweep_file, data, augment={"preset": "ece449"})).model_input == (3, 224, 224)
    crop = {"resize": {"mode": "center_crop", "shorter_side": 12, "size": 10}}
    assert check_data(config(sweep_file, data, augment=crop)).model_input == (3, 10, 10)


def test_the_cli_prints_one_line_and_exits_2(sweep_file, tmp_path, capsys):
    manifest = make.csv_manifest(tmp_path, [("a.png", "x"), ("b.png", "y"), ("c.png", "z")])
    path = sweep_file(tiny_config(data={"kind": "csv", "path": str(manifest), "classes": ["x", "y"]}))
    assert main(["validate", str(path), "--data"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {manifest}: line 4: label 'z' is not in data.classes (x, y)\n"


def test_write_preview_draws_a_grid_of_augmented_samples(sweep_file, tmp_path):
    root = make.image_folder(tmp_path, {"a": 5, "b": 4}, size=8, channels=1)
    cfg = config(sweep_file, {"kind": "image_folder", "root": str(root)}, augment={"preset": "light"})
    out = write_preview(cfg, tmp_path / "grid.png", n=9)
    grid = np.asarray(Image.open(out))
    assert grid.shape == (3 * 16 * 8, 3 * 16 * 8, 3)  # 3x3 tiles of 16 px (what tiny_cnn takes), scaled 8x to reach 128 px tiles
    assert grid.std() > 0
