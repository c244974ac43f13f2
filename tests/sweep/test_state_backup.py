"""Ray Tune's state files: a good copy is kept, and a damaged file is put right before a resume."""

import json

import cloudpickle
import pytest

from raysweep.errors import ConfigError
from raysweep.sweep.layout import SweepLayout
from raysweep.sweep.state_backup import BACKUP_DIR, backup, repair


def sweep_dir(tmp_path):
    d = tmp_path / "sw"
    d.mkdir()
    (d / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps({"trial_data": [1, 2]}))
    (d / "searcher-state-2026-01-01_00-00-00.pkl").write_bytes(cloudpickle.dumps({"asked": 3}))
    (d / "search_gen_state-2026-01-01_00-00-00.json").write_bytes(cloudpickle.dumps({"counter": 3}))
    (d / "tuner.pkl").write_bytes(cloudpickle.dumps({"tuner": 1}))
    return SweepLayout(str(tmp_path), "sw"), d


def test_damaged_files_are_restored_from_the_last_good_copy(tmp_path):
    layout, d = sweep_dir(tmp_path)
    seen = backup(layout)
    assert sorted(p.name for p in (d / BACKUP_DIR).iterdir()) == sorted(p.name for p in d.iterdir() if p.is_file())
    (d / "search_gen_state-2026-01-01_00-00-00.json").write_bytes(b"\x80\x05\x95")  # cut short
    (d / "experiment_state-2026-01-01_00-00-00.json").write_text("")
    assert backup(layout, seen) == seen  # a damaged file never replaces its good copy
    restored = repair(layout)
    assert sorted(restored) == ["experiment_state-2026-01-01_00-00-00.json", "search_gen_state-2026-01-01_00-00-00.json"]
    assert json.loads((d / "experiment_state-2026-01-01_00-00-00.json").read_text()) == {"trial_data": [1, 2]}
    assert cloudpickle.loads((d / "search_gen_state-2026-01-01_00-00-00.json").read_bytes()) == {"counter": 3}


def test_a_newer_damaged_file_is_removed_so_tune_reads_the_good_one(tmp_path):
    layout, d = sweep_dir(tmp_path)
    backup(layout)
    (d / "experiment_state-2026-01-02_00-00-00.json").write_text('{"trial_da')  # a later session's, cut short
    assert repair(layout) == ["experiment_state-2026-01-01_00-00-00.json"]
    assert not (d / "experiment_state-2026-01-02_00-00-00.json").exists()


def test_whole_files_are_left_alone_and_damage_without_a_copy_is_a_clear_error(tmp_path):
    layout, d = sweep_dir(tmp_path)
    assert repair(layout) == []
    (d / "tuner.pkl").write_bytes(b"")
    with pytest.raises(ConfigError, match="tuner.pkl is damaged .* no good copy was kept"):
        repair(layout)
