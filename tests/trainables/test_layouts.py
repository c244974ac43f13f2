"""Data as it ships: manifests of ids without extensions, other separators, pandas'
index column, pixels and labels in two files, headerless files; and the errors that
say which key fixes a near miss."""

import numpy as np
import pandas as pd
import pytest

from raysweep.errors import DataError
from tests.trainables import data_factory as make
from tests.trainables.data_factory import error, load


# -- manifests of ids --------------------------------------------------------------


def test_a_manifest_of_ids_finds_each_file_whatever_its_extension(tmp_path):
    path, root = make.id_manifest(tmp_path, ["a1", "b2", "c3"], ["8 5", "1", "5"], suffix=".jpg")
    (root / "c3.jpg").rename(root / "c3.png")  # one folder may hold several formats
    s = load(kind="csv", path=str(path), root=str(root), image_col="image_id", label_col="labels")
    assert [s.images.name(i) for i in range(3)] == [str(root / "a1.jpg"), str(root / "b2.jpg"), str(root / "c3.png")]
    assert s.task == "multilabel" and s.classes == ["1", "5", "8"] and s.images.load(2).shape == (32, 32, 3)


def test_image_ext_names_the_extension_and_settles_an_ambiguous_id(tmp_path):
    path, root = make.id_manifest(tmp_path, ["a1", "b2"], ["x", "y"], suffix=".jpg")
    make.write_image(root / "a1.png")
    assert error(kind="csv", path=str(path), root=str(root), image_col="image_id", label_col="labels") == (
        f"{path}: line 2: names 'a1', which has several image files (a1.jpg, a1.png); set data.image_ext"
    )
    s = load(kind="csv", path=str(path), root=str(root), image_col="image_id", label_col="labels", image_ext="png")
    assert s.images.name(0) == str(root / "a1.png")
    with pytest.raises(DataError) as info:
        load(kind="csv", path=str(path), root=str(root), image_col="image_id", label_col="labels", image_ext=".gif").images.load(0)
    assert info.value.line() == f"{root / 'a1.gif'}: no such file ({path} line 2)"  # files are read when used


def test_kaggle_hpa_2018_id_target_with_space_separated_labels(tmp_path):
    path, root = make.hpa_channel_files(tmp_path, ["s1", "s2", "s3"], ["16 0", "7", "0 7"], header=("Id", "Target"))
    s = load(kind="channel_files", path=str(path), root=str(root), image_col="Id", label_col="Target",
             channels=["red", "green", "blue"], task="multilabel", classes=[str(c) for c in range(19)])
    assert s.labels[:, [0, 7, 16]].tolist() == [[1, 0, 1], [0, 1, 0], [1, 1, 0]]


def test_the_label_separator_is_found_in_the_cells(tmp_path):
    path, root = make.hpa_channel_files(tmp_path, ["s1", "s2"], ["16|0", "7"])  # Kaggle's HPA 2021 file
    s = load(kind="channel_files", path=str(path), root=str(root), image_col="ID", label_col="Label", channels=["red"], task="multilabel")
    assert s.classes == ["0", "7", "16"] and s.labels.tolist() == [[1, 0, 1], [0, 1, 0]]


def test_a_semicolon_manifest_and_one_written_by_pandas_with_its_index(tmp_path):
    make.image_folder(tmp_path, {"a": 2}, name="img")
    frame = pd.DataFrame({"image": ["img/a/a_0.png", "img/a/a_1.png"], "label": ["x", "y"]})
    frame.to_csv(tmp_path / "semi.csv", sep=";", index=False)
    frame.to_csv(tmp_path / "indexed.csv")  # ',image,label' then '0,img/...'
    for name in ("semi.csv", "indexed.csv"):
        s = load(kind="csv", path=str(tmp_path / name))
        assert s.classes == ["x", "y"] and len(s) == 2
    frame.to_csv(tmp_path / "tabs.tsv", sep="\t", index=False)
    assert len(load(kind="csv", path=str(tmp_path / "tabs.tsv"), sep="\t")) == 2


# -- pixel tables ------------------------------------------------------------------


def test_a_pixel_table_saved_by_pandas_with_its_index(tmp_path):
    path = make.pandas_pixel_table(tmp_path, n=6, shape=(4, 3, 3))
    assert pd.read_csv(path).shape == (6, 4 * 3 * 3 + 2)  # the index, the pixels, the label
    s = load(kind="pixel_table", path=str(path), reshape=[4, 3, 3])
    assert np.array_equal(s.images.images.reshape(6, -1), make.table_pixels(6, (4, 3, 3)))
    assert s.labels.tolist() == [0, 1, 0, 1, 0, 1] and s.images.name(2) == f"{path}: line 4"


def test_a_parquet_table_keeps_its_index_apart(tmp_path):
    frame = pd.DataFrame(make.table_pixels(4, (2, 2)), columns=["p0", "p1", "p2", "p3"], index=[10, 11, 12, 13])
    frame["label"] = ["a", "b", "a", "b"]
    frame.to_parquet(tmp_path / "t.parquet")  # a non-default index is stored as a column
    s = load(kind="pixel_table", path=str(tmp_path / "t.parquet"), reshape=[2, 2])
    assert np.array_equal(s.images.images.reshape(4, -1), make.table_pixels(4, (2, 2)))


def test_pixels_and_labels_in_two_headerless_files(tmp_path):
    x, y = make.split_pixel_files(tmp_path, n=8, shape=(4, 3, 3), labels=["no", "yes"] * 4)
    assert x.read_text().splitlines()[0].count(",") == 35 and y.read_text().splitlines()[:2] == ["no", "yes"]
    s = load(kind="pixel_table", path=str(x), labels_path=str(y), reshape=[4, 3, 3])
    assert np.array_equal(s.images.images.reshape(8, -1), make.table_pixels(8, (4, 3, 3)))
    assert s.classes == ["no", "yes"] and s.labels.tolist() == [0, 1] * 4 and s.images.name(0) == f"{x}: line 1"


@pytest.mark.parametrize("header, index", [(True, False), (True, True), (False, True)])
def test_pixels_and_labels_in_two_files_as_pandas_writes_them(tmp_path, header, index):
    x, y = make.split_pixel_files(tmp_path, n=8, shape=(2, 2), header=header, index=index)
    data = {"kind": "pixel_table", "path": str(x), "labels_path": str(y), "reshape": [2, 2]}
    if index and not header:  # nothing tells the index from a pixel in a headerless file
        assert error(**data) == (
            f"data.reshape: [2, 2] holds 4 values but the rows of {x} have 5 pixels; "
            "if the first column is a row index (pandas' to_csv()), set data.index_col: 0"
        )
        data["index_col"] = 0
    s = load(**data)
    assert np.array_equal(s.images.images.reshape(8, -1), make.table_pixels(8, (2, 2)))
    assert s.labels.tolist() == [0, 1] * 4


def test_an_npz_of_pixels_takes_its_labels_from_a_file_too(tmp_path):
    x = make.table_pixels(6, (2, 2))
    np.savez(tmp_path / "x.npz", x=x)
    pd.DataFrame({"target": ["b", "a"] * 3}).to_csv(tmp_path / "y.csv", index=False)
    s = load(kind="pixel_table", path=str(tmp_path / "x.npz"), labels_path=str(tmp_path / "y.csv"), label_col="target", reshape=[2, 2])
    assert s.classes == ["a", "b"] and s.labels.tolist() == [1, 0] * 3


def test_a_headerless_table_names_its_label_column_by_position(tmp_path):
    x = make.table_pixels(6, (2, 2))
    frame = pd.DataFrame(x)
    frame.insert(0, "label", ["cat", "dog"] * 3)
    frame.to_csv(tmp_path / "t.csv", sep=";", header=False, index=False)
    s = load(kind="pixel_table", path=str(tmp_path / "t.csv"), label_col="0", reshape=[2, 2])
    assert np.array_equal(s.images.images.reshape(6, -1), x) and s.classes == ["cat", "dog"]


def test_a_labels_file_of_another_length_is_refused(tmp_path):
    x, y = make.split_pixel_files(tmp_path, n=8, shape=(2, 2))
    y.write_text("\n".join(y.read_text().splitlines()[:7]) + "\n")
    assert error(kind="pixel_table", path=str(x), labels_path=str(y), reshape=[2, 2]) == (
        f"{y}: data.labels_path: has 7 labels but {x} has 8 rows"
    )


def test_an_index_col_that_is_not_there(tmp_path):
    path = make.pixel_table(tmp_path, n=4, shape=(2, 2))
    assert error(kind="pixel_table", path=str(path), reshape=[2, 2], index_col="id") == (
        f"data.index_col: no column 'id' in {path} (columns: label, 0, 1, 2, 3)"
    )


# -- errors that name the fix ------------------------------------------------------


def test_a_label_that_is_classes_joined_by_another_separator_names_label_sep(tmp_path):
    path, root = make.hpa_channel_files(tmp_path, ["s1", "s2"], ["16 0", "7"], header=("Id", "Target"))
    classes = [str(c) for c in range(19)]
    assert error(kind="channel_files", path=str(path), root=str(root), image_col="Id", label_col="Target", channels=["red"],
                 task="multilabel", classes=classes, label_sep="|") == (
        f"{path}: line 2: label '16 0' is not in data.classes ({', '.join(classes)}); "
        "split on ' ' it is classes 16, 0: set data.label_sep: ' '"
    )
    assert error(kind="channel_files", path=str(path), root=str(root), image_col="Id", label_col="Target", channels=["red"],
                 task="multiclass", classes=classes).endswith("split on ' ' it is classes 16, 0: set data.label_sep: ' ' and data.task: multilabel")


def test_torchvision_files_that_fail_the_checksum_are_not_called_missing(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    root = make.fake_cifar10(tmp_path, n=20, monkeypatch=monkeypatch)
    batch = root / CIFAR10.base_folder / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:100])  # truncated: its checksum no longer matches
    assert error(kind="torchvision", name="CIFAR10", root=str(root)) == (
        f"data.root: CIFAR10 files under {root / CIFAR10.base_folder} are incomplete or fail torchvision's checksum "
        "(Dataset not found or corrupted): a file is missing, truncated or not the official release; "
        "set data.download: true to fetch them again"
    )


@pytest.mark.parametrize("row, header", [
    (["label", "0", "1", "2"], True),    # a table with a label column and pandas' int names
    (["", "0", "1", "2", "label"], True),  # to_csv() with its index
    (["0", "1", "2", "3"], True),          # to_csv(index=False) of a bare array
    (["label", "p0", "p1"], True),
    (["cat", "0.1", "0.5", "0.2"], False),  # a headerless row: its label, then pixels
    (["0.1", "0.5", "0.2"], False),
    (["0", "1"], False),                   # a headerless labels file: index 0, label 1
    (["target"], True),
    (["1"], False),
])
def test_a_first_row_is_a_header_when_it_names_columns(row, header):
    from trainables.data.layout import has_header

    assert has_header(row) is header
