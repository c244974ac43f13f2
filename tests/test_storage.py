from pathlib import Path

from raysweep.storage import copy_dir_into_place, exists, join, read_bytes, storage_uri, write_bytes, write_local_file


def test_paths_become_absolute_and_uris_stay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage_uri("results") == str(tmp_path / "results")
    assert storage_uri("s3://bucket/x") == "s3://bucket/x"
    assert join("s3://bucket/x", "a", "b") == "s3://bucket/x/a/b"
    assert join(str(tmp_path), "a") == str(tmp_path / "a")


def test_writes_are_whole_or_absent(tmp_path):
    uri = join(str(tmp_path), "deep", "a.json")
    write_bytes(uri, b'{"x": 1}')
    assert read_bytes(uri) == b'{"x": 1}' and exists(uri)
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["a.json"]  # no temporary left

    def fail(fh):
        fh.write(b"half")
        raise OSError("disk full")

    final = tmp_path / "state.pt"
    write_local_file(final, lambda fh: fh.write(b"old"))
    try:
        write_local_file(final, fail, sync=True)
    except OSError:
        pass
    assert final.read_bytes() == b"old"  # the earlier file stands
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_directory_copy_replaces_the_old_one_whole(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("new")
    dest = tmp_path / "store" / "checkpoint_000001"
    dest.mkdir(parents=True)
    (dest / "stale").write_text("old")
    copy_dir_into_place(src, str(dest))
    assert sorted(p.name for p in dest.iterdir()) == ["a"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["checkpoint_000001"]
    assert Path(dest, "a").read_text() == "new"
