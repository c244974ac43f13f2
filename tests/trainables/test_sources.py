"""Data sources on tiny files: what each reads, and the one-line errors of bad input."""


import numpy as np
import pytest
from PIL import Image

from raysweep.config.sections.data import DataConfig
from raysweep.errors import ConfigError, DataError
from tests.trainables import data_factory as make
from tests.trainables.data_factory import error, load
from trainables.data.samples import to_uint8
from trainables.data.sources import SOURCES, required_fields
from trainables.data.stores import read_image


def test_every_file_source_declares_what_it_requires():
    assert {name: required_fields(SOURCES.get(name)) for name in ("image_folder", "csv", "pixel_table", "channel_files", "torchvision")} == {
        "image_folder": ("root",),
        "csv": ("path",),
        "pixel_table": ("path",),
        "channel_files": ("path", "root", "channels"),
        "torchvision": ("name", "root"),
    }


# -- image_folder ----------------------------------------------------------------


def test_image_folder_classes_are_the_sorted_folders(tmp_path):
    root = make.image_folder(tmp_path, {"dog": 2, "cat": 3}, size=8, channels=3)
    (root / "cat" / "notes.txt").write_text("not an image")  # skipped: not an image suffix
    make.write_image(root / "dog" / "nested" / "deep.png", 8, 3, seed=9)  # images anywhere under the class folder
    s = load(kind="image_folder", root=str(root))
    assert s.classes == ["cat", "dog"]
    assert s.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert s.task == "binary" and s.in_chans == 3
    assert s.images.name(5) == str(root / "dog" / "nested" / "deep.png")
    expected = np.asarray(Image.open(root / "cat" / "cat_1.png"))
    assert np.array_equal(s.images.load(1), expected)


def test_image_folder_declared_classes_fix_the_order_and_refuse_other_folders(tmp_path):
    root = make.image_folder(tmp_path, {"a": 2, "b": 2, "c": 1}, channels=1)
    s = load(kind="image_folder", root=str(root), classes=["c", "b", "a"])
    assert s.labels.tolist() == [0, 1, 1, 2, 2]
    assert s.in_chans == 1 and s.images.load(0).shape == (8, 8, 1)
    assert error(kind="image_folder", root=str(root), classes=["a", "b"]) == f"{root / 'c'}: folder is not a class in data.classes (a, b)"


def test_image_folder_missing_or_empty_root(tmp_path):
    assert error(kind="image_folder", root=str(tmp_path / "nope")) == f"data.root: no such directory: {tmp_path / 'nope'}"
    assert error(kind="image_folder", root=str(tmp_path)) == f"data.root: no class folders in {tmp_path}"
    (tmp_path / "a").mkdir()
    assert error(kind="image_folder", root=str(tmp_path)) == f"data.root: no image files under {tmp_path}"


# -- stores: decoding files --------------------------------------------------------


def test_rgba_loses_alpha_unless_asked_and_gray_stays_one_channel(tmp_path):
    rgba = make.write_image(tmp_path / "x.png", 6, 4)
    pixels = np.asarray(Image.open(rgba))
    assert np.array_equal(read_image(rgba), pixels[..., :3])
    assert np.array_equal(read_image(rgba, "RGBA"), pixels)
    gray = make.write_image(tmp_path / "g.png", 6, 1)
    assert read_image(gray).shape == (6, 6, 1)
    assert np.array_equal(read_image(gray, "RGB")[..., 2], np.asarray(Image.open(gray)))


def test_sixteen_bit_files_are_scaled_to_uint8(tmp_path):
    deep = np.array([[0, 257, 65535], [32896, 514, 1000]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    out = read_image(tmp_path / "deep.png")
    assert out.dtype == np.uint8 and out[..., 0].tolist() == [[0, 1, 255], [128, 2, 4]]
    Image.fromarray(np.array([[0, 257, 65535, 70000]], np.int32), mode="I").save(tmp_path / "int.tif")  # 32-bit: read as 16
    assert read_image(tmp_path / "int.tif")[..., 0].tolist() == [[0, 1, 255, 255]]
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32), mode="F").save(tmp_path / "float.tif")
    assert read_image(tmp_path / "float.tif")[..., 0].tolist() == [[0, 128, 255]]


def test_missing_corrupt_and_truncated_files_name_the_file(tmp_path):
    with pytest.raises(DataError) as info:
        read_image(tmp_path / "gone.png")
    assert info.value.line() == f"{tmp_path / 'gone.png'}: no such file"
    (tmp_path / "bad.png").write_bytes(b"definitely not a png")
    with pytest.raises(DataError) as info:
        read_image(tmp_path / "bad.png", listed="m.csv line 4")
    assert info.value.line() == f"{tmp_path / 'bad.png'}: not an image file PIL can read (m.csv line 4)"
    good = make.write_image(tmp_path / "good.png", 32, 3).read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError) as info:
        read_image(tmp_path / "cut.png")
    assert info.value.line() == f"{tmp_path / 'cut.png'}: cannot decode image: image file is truncated"


def test_to_uint8_rules():
    assert to_uint8(np.array([0.0, 0.5, 1.0], np.float32)).tolist() == [0, 128, 255]
    assert to_uint8(np.array([0.0, 2.0, 300.0])).tolist() == [0, 2, 255]  # floats above 1 are 0..255 already
    assert to_uint8(np.array([0, 7, 255, 300], np.int64)).tolist() == [0, 7, 255, 255]  # tables of 0..255 integers
    assert to_uint8(np.array([0, 7, 65535], np.uint16)).tolist() == [0, 0, 255]
    assert to_uint8(np.array([True, False])).tolist() == [255, 0]


# -- csv manifests -----------------------------------------------------------------


def test_csv_single_label_paths_relative_to_the_manifest(tmp_path):
    path = make.csv_manifest(tmp_path, [("img/a0.png", "cat"), ("img/a1.png", "dog"), ("img/a2.png", "cat"), ("img/a3.png", "bird")])
    s = load(kind="csv", path=str(path))
    assert s.classes == ["bird", "cat", "dog"] and s.task == "multiclass"
    assert s.labels.dtype == np.int64 and s.labels.tolist() == [1, 2, 1, 0]
    assert s.images.name(3) == str(tmp_path / "img" / "a3.png")
    assert np.array_equal(s.images.load(2), np.asarray(Image.open(tmp_path / "img" / "a2.png")))


def test_csv_paths_relative_to_data_root(tmp_path):
    make.write_image(tmp_path / "pics" / "x.png", 8, 3)
    make.write_image(tmp_path / "pics" / "y.png", 8, 3, seed=1)
    path = make.csv_manifest(tmp_path / "meta", [("x.png", "a"), ("y.png", "b")], images=False)
    s = load(kind="csv", path=str(path), root=str(tmp_path / "pics"))
    assert s.images.name(1) == str(tmp_path / "pics" / "y.png")
    assert s.images.load(1).shape == (8, 8, 3)


def test_csv_multilabel_protein_atlas_style(tmp_path):
    rows = [("a.png", "8 5 0"), ("b.png", "10"), ("c.png", "5"), ("d.png", "0 10")]
    path = make.csv_manifest(tmp_path, rows, header=("Id", "Target"))
    s = load(kind="csv", path=str(path), image_col="Id", label_col="Target")
    assert s.task == "multilabel" and s.classes == ["0", "5", "8", "10"]  # numeric names sort as numbers
    assert s.labels.dtype == np.float32
    assert s.labels.tolist() == [[1, 1, 1, 0], [0, 0, 0, 1], [0, 1, 0, 0], [1, 0, 0, 1]]
    declared = load(kind="csv", path=str(path), image_col="Id", label_col="Target", classes=[str(i) for i in range(12)])
    assert declared.labels.shape == (4, 12) and declared.labels[0].nonzero()[0].tolist() == [0, 5, 8]


def test_csv_multilabel_declared_even_when_every_row_has_one_label(tmp_path):
    path = make.csv_manifest(tmp_path, [("a.png", "x"), ("b.png", "y")])
    s = load(kind="csv", path=str(path), task="multilabel")
    assert s.task == "multilabel" and s.labels.tolist() == [[1, 0], [0, 1]]


def test_csv_custom_separator_and_whole_names_for_single_label_tasks(tmp_path):
    path = make.csv_manifest(tmp_path, [("a.png", "1|3"), ("b.png", "2")])
    assert load(kind="csv", path=str(path), label_sep="|").labels.tolist() == [[1, 0, 1], [0, 1, 0]]
    named = make.csv_manifest(tmp_path, [("a.png", "golden retriever"), ("b.png", "pug")], name="dogs.csv")
    s = load(kind="csv", path=str(named), task="multiclass")
    assert s.classes == ["golden retriever", "pug"] and s.labels.tolist() == [0, 1]


def test_csv_group_column_gives_groups(tmp_path):
    path = make.csv_manifest(tmp_path, [("a.png", "x", "p1"), ("b.png", "y", "p1"), ("c.png", "x", "p2")], header=("image", "label", "patient"))
    assert load(kind="csv", path=str(path), group_col="patient").groups.tolist() == ["p1", "p1", "p2"]
    assert load(kind="csv", path=str(path)).groups is None


def test_csv_errors_name_the_file_the_line_and_the_key(tmp_path):
    path = make.csv_manifest(tmp_path, [("a.png", "x"), ("b.png", "y"), ("c.png", "z")])
    assert error(kind="csv", path=str(path), classes=["x", "y"]) == f"{path}: line 4: label 'z' is not in data.classes (x, y)"
    assert error(kind="csv", path=str(path), label_col="target") == f"{path}: data.label_col: no column 'target' (columns: image, label)"
    assert error(kind="csv", path=str(path), group_col="site") == f"{path}: data.group_col: no column 'site' (columns: image, label)"
    assert error(kind="csv", path=str(tmp_path / "none.csv")) == f"data.path: no such file: {tmp_path / 'none.csv'}"
    assert error(kind="csv", path=str(path), root=str(tmp_path / "imgs")) == f"data.root: no such directory: {tmp_path / 'imgs'}"
    blank = make.csv_manifest(tmp_path, [("a.png", "x"), ("b.png", "")], name="blank.csv")
    assert error(kind="csv", path=str(blank)) == f"{blank}: line 3: has no label"
    noimg = make.write_csv(tmp_path / "noimg.csv", ("image", "label"), [("a.png", "x"), ("", "y")])
    assert error(kind="csv", path=str(noimg)) == f"{noimg}: line 3: empty 'image' cell"
    empty = make.write_csv(tmp_path / "empty.csv", ("image", "label"), [])
    assert error(kind="csv", path=str(empty)) == f"{empty}: has no rows"
    assert error(kind="csv", path=str(path), task="binary") == "data.task: is 'binary' but the data has 3 classes"


# -- pixel tables ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet", "npz"])
def test_pixel_table_rows_become_images(tmp_path, fmt):
    path = make.pixel_table(tmp_path, n=6, shape=(4, 3, 2), fmt=fmt, labels=[0, 1, 2, 0, 1, 2])
    s = load(kind="pixel_table", path=str(path), reshape=[4, 3, 2])
    pixels = make.table_pixels(6, (4, 3, 2))
    assert s.in_chans == 2 and s.classes == ["0", "1", "2"] and s.labels.tolist() == [0, 1, 2, 0, 1, 2]
    for i in range(6):
        assert s.images.load(i).dtype == np.uint8
        assert np.array_equal(s.images.load(i), pixels[i].reshape(4, 3, 2))  # floats in [0, 1] back to 0..255 exactly
    assert s.images.name(2) == (f"{path}: line 4" if fmt == "csv" else f"{path}: row 2")


def test_pixel_table_ijcnn_shape_and_one_channel(tmp_path):
    path = make.pixel_table(tmp_path, n=2, shape=(74, 55, 3), fmt="csv")
    s = load(kind="pixel_table", path=str(path), reshape=[74, 55, 3])
    assert s.images.load(1).shape == (74, 55, 3) and s.task == "binary"
    gray = make.pixel_table(tmp_path, n=3, shape=(5, 4), fmt="parquet", floats=False, name="gray")
    s = load(kind="pixel_table", path=str(gray), reshape=[5, 4])
    assert s.in_chans == 1 and np.array_equal(s.images.load(2)[..., 0], make.table_pixels(3, (5, 4))[2].reshape(5, 4))


def test_pixel_table_npz_shaped_images_and_multi_hot_labels(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, size=(4, 5, 5), dtype=np.uint8)
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=np.float32)
    np.savez(tmp_path / "t.npz", x=x, y=y)
    s = load(kind="pixel_table", path=str(tmp_path / "t.npz"), classes=["a", "b", "c"])
    assert s.task == "multilabel" and s.classes == ["a", "b", "c"] and np.array_equal(s.labels, y)
    assert np.array_equal(s.images.load(3)[..., 0], x[3])


def test_pixel_table_errors(tmp_path):
    path = make.pixel_table(tmp_path, n=3, shape=(3, 4), fmt="csv")
    assert error(kind="pixel_table", path=str(path), reshape=[4, 4]) == f"data.reshape: [4, 4] holds 16 values but the rows of {path} have 12 pixels"
    assert error(kind="pixel_table", path=str(path), reshape=[2, 3, 3]) == f"data.reshape: [2, 3, 3] holds 18 values but the rows of {path} have 12 pixels"
    square = make.pixel_table(tmp_path, n=2, shape=(4, 4), fmt="npz")
    assert error(kind="pixel_table", path=str(square)) == f"data.reshape: required to shape the 16-pixel rows of {square}, e.g. [4, 4]"
    assert error(kind="pixel_table", path=str(path), reshape=[3, 4], label_col="y") == f"{path}: data.label_col: no column 'y' (columns: label, 0, 1, 2, 3, 4, 5, 6, ...)"
    assert error(kind="pixel_table", path=str(path), reshape=[3, 4], classes=["1"]) == f"{path}: line 2: label '0' is not in data.classes (1)"
    holes = make.write_csv(tmp_path / "holes.csv", ("label", "0", "1"), [(0, 0.5, 0.5), (1, 0.2, "")])
    assert error(kind="pixel_table", path=str(holes), reshape=[1, 2]) == f"{holes}: line 3: has a missing or non-finite pixel value"
    text = make.write_csv(tmp_path / "text.csv", ("label", "0", "1"), [(0, 0.5, "dark")])
    assert error(kind="pixel_table", path=str(text), reshape=[1, 2]) == f"{text}: not a readable pixel table: In CSV column #2: CSV conversion error to float: invalid value 'dark'"
    np.savez(tmp_path / "nox.npz", images=np.zeros((2, 4)), y=np.zeros(2))
    assert error(kind="pixel_table", path=str(tmp_path / "nox.npz")) == (
        f"{tmp_path / 'nox.npz'}: has no array 'x' (arrays: images, y); write it with np.savez(path, x=images, y=labels)"
    )
    (tmp_path / "t.npy").write_bytes(b"")
    assert error(kind="pixel_table", path=str(tmp_path / "t.npy")) == (
        f"{tmp_path / 't.npy'}: data.path: unknown pixel table format '.npy'; use .csv, .parquet or .npz (arrays x and y)"
    )


# -- channel files -----------------------------------------------------------------


def test_channel_files_stack_the_chosen_channels_in_order(tmp_path):
    root = make.channel_files(tmp_path, ["s1", "s2", "s3"], ["red", "green", "blue", "yellow"])
    path = make.csv_manifest(tmp_path, [("s1", "8 5 0"), ("s2", "1"), ("s3", "5")], header=("Id", "Target"), images=False)
    common = dict(kind="channel_files", path=str(path), root=str(root), image_col="Id", label_col="Target")
    s = load(**common, channels=["yellow", "blue", "red"])
    assert s.in_chans == 3 and s.task == "multilabel" and s.classes == ["0", "1", "5", "8"]
    image = s.images.load(1)
    for k, channel in enumerate(["yellow", "blue", "red"]):
        assert np.array_equal(image[..., k], np.asarray(Image.open(root / f"s2_{channel}.png")))
    assert s.images.name(1) == str(root / "s2_{yellow,blue,red}.png")
    assert load(**common, channels=["red", "green", "blue", "yellow"]).images.load(0).shape == (8, 8, 4)


def test_channel_files_pattern_and_missing_files(tmp_path):
    root = make.channel_files(tmp_path, ["a", "b"], ["r", "g"], pattern="{channel}/{id}.png")
    path = make.csv_manifest(tmp_path, [("a", "x"), ("b", "y")], header=("id", "label"), images=False)
    s = load(kind="channel_files", path=str(path), root=str(root), image_col="id", channels=["g", "r"], channel_pattern="{channel}/{id}.png")
    assert np.array_equal(s.images.load(0)[..., 0], np.asarray(Image.open(root / "g" / "a.png")))
    (root / "r" / "b.png").unlink()
    with pytest.raises(DataError) as info:
        s.images.load(1)
    assert info.value.line() == f"{root / 'r' / 'b.png'}: no such file ({path} line 3)"


def test_channel_files_of_different_sizes(tmp_path):
    root = make.channel_files(tmp_path, ["a"], ["red", "green"])
    make.write_image(root / "a_green.png", 6, 1)
    path = make.csv_manifest(tmp_path, [("a", "x")], images=False)
    s = load(kind="channel_files", path=str(path), root=str(root), channels=["red", "green"])
    with pytest.raises(DataError) as info:
        s.images.load(0)
    assert info.value.line() == f"{root / 'a_green.png'}: is 6x6 but {root / 'a_red.png'} is 8x8"


def test_channel_pattern_is_validated_in_the_config():
    with pytest.raises(Exception) as info:
        DataConfig(channel_pattern="{id}.png")
    assert "must name the sample as {id} and the channel as {channel}" in str(info.value)


# -- torchvision -------------------------------------------------------------------


def test_torchvision_reads_a_cifar10_in_its_own_format(tmp_path, monkeypatch):
    import torchvision

    root = make.fake_cifar10(tmp_path, n=20, monkeypatch=monkeypatch)
    reference = torchvision.datasets.CIFAR10(str(root), train=True, download=False)
    s = load(kind="torchvision", name="cifar10", root=str(root))
    assert len(s) == 20 and s.in_chans == 3 and s.task == "multiclass"
    assert s.classes[:3] == ["airplane", "automobile", "bird"] and len(s.classes) == 10
    assert s.labels.tolist() == [k % 10 for k in range(20)]
    for i in (0, 7, 19):
        assert np.array_equal(s.images.load(i), np.asarray(reference[i][0]))  # HWC, as the PIL image torchvision returns


def test_torchvision_missing_dataset_and_unknown_name(tmp_path):
    assert error(kind="torchvision", name="CIFAR100", root=str(tmp_path)) == (
        f"data.root: no CIFAR100 data under {tmp_path} (torchvision: Dataset not found or corrupted); set data.download: true or point data.root at it"
    )
    with pytest.raises(ConfigError) as info:
        load(kind="torchvision", name="CIFAR1000", root=str(tmp_path))
    assert info.value.line() == "data.name: unknown torchvision dataset 'CIFAR1000', did you mean 'CIFAR100' or 'CIFAR10' or 'UCF101'?"
    with pytest.raises(ConfigError) as info:
        load(kind="torchvision", name="emnist", root=str(tmp_path))  # its split names are not 'train'
    assert info.value.line().startswith("data.name: torchvision.datasets.EMNIST cannot be opened as (split='train'): Unknown value 'train' for argument split. Valid values are ")  # a set, in no fixed order


# -- into training -------------------------------------------------------------------


def test_a_trial_trains_from_files_through_loader_workers(sweep_file, tmp_path):
    """File stores and the transforms cross into DataLoader worker processes."""
    from raysweep.config import load_sweep
    from tests.conftest import tiny_config
    from trainables.session import LocalSession
    from trainables.trainer import Trainer

    root = make.image_folder(tmp_path, {"a": 8, "b": 8}, size=8, channels=3)
    raw = tiny_config(data={"kind": "image_folder", "root": str(root), "loader_workers": 1}, augment={"preset": "light"}, train={"epochs": 1, "batch_size": 4})
    cfg = load_sweep(sweep_file(raw)).config
    session = LocalSession(tmp_path / "run")
    final = Trainer(cfg, session).fit()
    assert final["epoch"] == 1 and np.isfinite(final["val/loss"])


def test_a_source_is_a_frozen_record_in_the_registry():
    import dataclasses

    from trainables.data.registry import SourceInfo

    info = SOURCES.get("torchvision")
    assert isinstance(info, SourceInfo) and info.name == "torchvision" and callable(info.load)
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.requires = ()  # type: ignore[misc]
