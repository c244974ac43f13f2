"""`raysweep extend` and `raysweep resume` refuse, in one line and before Ray starts, a sweep
whose driver runs; extend a bad --num-samples and a bad --set; a killed driver's leftover mark
does not block them."""

import json
import os
import subprocess
import sys

import pytest

from raysweep import cli
from raysweep.config import load_sweep
from raysweep.sweep.driver import DRIVER_FILE, driving, running_driver
from raysweep.sweep.layout import SweepLayout, manifest_for
from tests.conftest import tiny_config


@pytest.fixture
def ended_sweep(tmp_path, sweep_file):
    sweep = load_sweep(sweep_file(tiny_config(optimizer={"lr": {"loguniform": [0.01, 0.1]}})))
    layout = SweepLayout(str(tmp_path / "results"), "tiny")
    layout.save(sweep, manifest_for(sweep, num_trials=2, num_configs=2, replicas=1))
    return layout


def extend(layout, *args, capsys):
    code = cli.main(["extend", layout.sweep_id, "--storage", layout.storage, *args])
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("command", [["extend", "--num-samples", "2"], ["resume"]])
def test_a_running_sweep_is_refused_in_one_line(ended_sweep, capsys, command):
    with driving(ended_sweep):  # this process drives it
        assert running_driver(ended_sweep) is not None
        code = cli.main([command[0], ended_sweep.sweep_id, "--storage", ended_sweep.storage, *command[1:]])
        err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "is running on" in err[0] and f"pid {os.getpid()}" in err[0], err
    assert f"{command[0]} it once it has ended" in err[0]
    assert not ended_sweep.has(DRIVER_FILE) and running_driver(ended_sweep) is None


def test_the_mark_of_a_killed_driver_does_not_count(ended_sweep):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        mark = {"host": os.uname().nodename, "pid": child.pid, "started": open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[19]}
        ended_sweep.write_text(DRIVER_FILE, json.dumps(mark))
        assert running_driver(ended_sweep) is not None
    finally:
        child.kill()
        child.wait()
    assert running_driver(ended_sweep) is None  # SIGKILLed: its mark stays, its pid is gone
    ended_sweep.write_text(DRIVER_FILE, json.dumps({**mark, "pid": os.getpid()}))
    assert running_driver(ended_sweep) is None  # a pid reused by another process


@pytest.mark.parametrize("args, words", [
    (["--num-samples", "0"], "--num-samples: must be at least 1"),
    (["--num-samples", "2", "--set", "optimizer.lr={loguniform: [0.5, 0.1]}"], "--set"),
])
def test_bad_extensions_are_refused_in_one_line(ended_sweep, capsys, args, words):
    code, err = extend(ended_sweep, *args, capsys=capsys)
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert "extensions" not in ended_sweep.manifest()
