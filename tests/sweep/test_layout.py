import pytest

from raysweep.errors import ConfigError
from raysweep.sweep.layout import SweepLayout, storage_uri


def test_a_taken_name_gets_a_suffix_and_find_locates_by_id_or_path(tmp_path):
    first = SweepLayout.new(str(tmp_path), "quick")
    first.write_text("raysweep_manifest.json", "{}")
    second = SweepLayout.new(str(tmp_path), "quick")
    assert (first.sweep_id, second.sweep_id) == ("quick", "quick-2")
    assert SweepLayout.find("quick", str(tmp_path)) == first
    assert SweepLayout.find(str(tmp_path / "quick")) == first
    with pytest.raises(ConfigError, match="no sweep 'nope'"):
        SweepLayout.find("nope", str(tmp_path))


def test_writes_are_whole_or_absent(tmp_path):
    layout = SweepLayout(str(tmp_path), "s")
    layout.write_text("a.json", '{"x": 1}')
    assert layout.read_text("a.json") == '{"x": 1}'
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["a.json"]  # no temporary left


def test_storage_paths_become_absolute_and_uris_stay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage_uri("results") == str(tmp_path / "results")
    assert storage_uri("s3://bucket/x") == "s3://bucket/x"
